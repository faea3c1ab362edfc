using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Security;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.TestSupport;
using BitbucketZdu.Upgrade;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>The fake world, with a node host that can hold one node's start until the run is cancelled (a Ctrl+C mid-node).</summary>
internal sealed class BlockingPortsFactory : IUpgradePortsFactory
{
    private readonly UpgradeFixture _f;

    public BlockingPortsFactory(UpgradeFixture f) => _f = f;

    /// <summary>The node whose start waits for cancellation, or null.</summary>
    public string? HoldStartOf { get; set; }
    public ManualResetEventSlim Held { get; } = new();

    public UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options)
    {
        var inner = FakePorts.Create(_f.World, new FileJournalStore(options.JournalPath ?? _f.Journal.Directory));
        return new UpgradePorts(inner.Cluster, inner.NodeApi, inner.Rotation, new HoldingHost(inner.Nodes, this), inner.Journal, inner.Clock, inner);
    }

    private sealed class HoldingHost : INodeHost
    {
        private readonly INodeHost _inner;
        private readonly BlockingPortsFactory _owner;

        public HoldingHost(INodeHost inner, BlockingPortsFactory owner)
        {
            _inner = inner;
            _owner = owner;
        }

        public async Task StartAsync(NodeProfile node, CancellationToken ct)
        {
            if (node.Name == _owner.HoldStartOf)
            {
                _owner.Held.Set();
                await Task.Delay(Timeout.Infinite, ct);
            }
            await _inner.StartAsync(node, ct);
        }

        public Task<NodeHostProbe> ProbeAsync(NodeProfile node, CancellationToken ct) => _inner.ProbeAsync(node, ct);
        public Task<NodeHostState> GetStateAsync(NodeProfile node, CancellationToken ct) => _inner.GetStateAsync(node, ct);
        public Task PreStageAsync(NodeProfile node, ReleaseArchive archive, string targetVersion, CancellationToken ct) => _inner.PreStageAsync(node, archive, targetVersion, ct);
        public Task StopAsync(NodeProfile node, CancellationToken ct) => _inner.StopAsync(node, ct);
        public Task WaitProcessGoneAsync(NodeProfile node, TimeSpan timeout, CancellationToken ct) => _inner.WaitProcessGoneAsync(node, timeout, ct);
        public Task InstallAsync(NodeProfile node, string targetVersion, CancellationToken ct) => _inner.InstallAsync(node, targetVersion, ct);
        public Task WaitStatusRunningAsync(NodeProfile node, TimeSpan timeout, CancellationToken ct) => _inner.WaitStatusRunningAsync(node, timeout, ct);
        public Task RollBackAsync(NodeProfile node, string previousVersion, CancellationToken ct) => _inner.RollBackAsync(node, previousVersion, ct);
    }
}

/// <summary>A console-like host that records what reaches the screen directly (Host.UI), as the console host would print it.</summary>
internal sealed class ScreenHost : PSHost
{
    private readonly ScreenUI _ui = new();
    public IReadOnlyList<string> WarningLines => _ui.Warnings.ToList();
    public override string Name => "ScreenHost";
    public override Version Version => new(1, 0);
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override PSHostUserInterface UI => _ui;
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
    public override void SetShouldExit(int exitCode) { }
    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }

    private sealed class ScreenUI : PSHostUserInterface
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Warnings { get; } = new();
        public override PSHostRawUserInterface? RawUI => null;
        public override string ReadLine() => throw new NotSupportedException();
        public override SecureString ReadLineAsSecureString() => throw new NotSupportedException();
        public override void Write(string value) { }
        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) { }
        public override void WriteLine(string value) { }
        public override void WriteErrorLine(string value) { }
        public override void WriteDebugLine(string message) { }
        public override void WriteProgress(long sourceId, ProgressRecord record) { }
        public override void WriteVerboseLine(string message) { }
        public override void WriteWarningLine(string message) => Warnings.Enqueue(message);
        public override Dictionary<string, PSObject> Prompt(string caption, string message, System.Collections.ObjectModel.Collection<FieldDescription> descriptions) => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
        public override int PromptForChoice(string caption, string message, System.Collections.ObjectModel.Collection<ChoiceDescription> choices, int defaultChoice) => throw new NotSupportedException();
    }
}

/// <summary>Get-BbRollingUpgrade (a run you can see), what Ctrl+C leaves on the screen, and progress bars that end.</summary>
[Collection(UpgradePortsFactoryCollection.Name)]
public sealed class RunStatusCmdletTests : IDisposable
{
    private readonly UpgradeFixture _f = new();
    private readonly ScreenHost _screen = new();
    private readonly Runspace _runspace;
    private readonly BlockingPortsFactory _factory;
    private readonly IUpgradePortsFactory _previous = UpgradePortsFactory.Current;
    private readonly string _profile;

    public RunStatusCmdletTests()
    {
        _factory = new BlockingPortsFactory(_f);
        UpgradePortsFactory.Current = _factory;
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { typeof(ConnectBbClusterCommand).Assembly.Location });
        _runspace = RunspaceFactory.CreateRunspace(_screen, iss);
        _runspace.Open();
        _profile = Path.Combine(_f.Directory, "prod.psd1");
        Run("New-BbClusterProfile -Path $p -ArchivePath $a -ArchiveSha256 $s -NodeName node-1,node-2,node-3 | Out-Null");
    }

    private void SetVariables()
    {
        var s = _runspace.SessionStateProxy;
        s.SetVariable("p", _profile);
        s.SetVariable("a", _f.ArchivePath);
        s.SetVariable("s", PreflightCheck.Sha256Of(_f.ArchivePath));
        s.SetVariable("j", _f.Journal.Directory);
        s.SetVariable("cred", new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)));
    }

    private (List<PSObject> Output, PowerShell Ps) Run(string script)
    {
        SetVariables();
        var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        var output = ps.Invoke().ToList();
        return (output, ps);
    }

    private RollingUpgradeStatus Status(string extra = "")
    {
        var (output, ps) = Run("Get-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j " + extra);
        using (ps)
        {
            Assert.False(ps.HadErrors, string.Join("\n", ps.Streams.Error));
            return (RollingUpgradeStatus)Assert.Single(output).BaseObject;
        }
    }

    [Fact]
    public void A_halted_run_shows_the_failed_node_and_the_resume_command_then_completed_after_resume()
    {
        _f.World["node-2"].FailStartOnVersion = To;
        Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false").Ps.Dispose();

        var halted = Status();

        Assert.Equal("Halted", halted.State);
        Assert.Equal($"Invoke-BbRollingUpgrade -ProfilePath {_profile} -Resume", halted.NextCommand);
        Assert.Equal(new[] { "Done", "RolledBack", "PreStaged" }, halted.Nodes.Select(n => n.Progress));
        Assert.Equal("", halted.OutOfRotation);
        Assert.Equal(To, halted.Nodes[0].Version);
        Assert.Equal(From, halted.Nodes[1].Version);
        Assert.Equal("InRotation", halted.Nodes[1].Rotation);
        Assert.True(halted.UpgradeMode);

        _f.World["node-2"].FailStartOnVersion = null;
        Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume").Ps.Dispose();
        var done = Status();
        Assert.Equal("Completed", done.State);
        Assert.True(done.Resumed);
        Assert.Equal("", done.NextCommand);
        Assert.Equal("STABLE", done.ClusterState);
        Assert.All(done.Nodes, n => Assert.Equal("Done", n.Progress));

        // -History: the resumed run is one run; a later run is a second one.
        var (history, ps) = Run("Get-BbRollingUpgrade -ProfilePath $p -JournalPath $j -History");
        using (ps) Assert.Equal(new[] { halted.RunId }, history.Select(h => ((RollingUpgradeStatus)h.BaseObject).RunId));
    }

    [Fact]
    public void A_run_without_an_end_line_is_Running_while_its_process_lives_and_Interrupted_once_it_is_gone()
    {
        void Write(string kind, string? step, int pid)
        {
            var node = step?.Split('/')[0];
            _f.Journal.AppendAsync("prod", new JournalEntry
            {
                Time = DateTimeOffset.UtcNow, RunId = "run-" + pid, Kind = kind, Step = step, Node = node == "cluster" ? null : node,
                FromVersion = kind == JournalKinds.RunStarted ? From : null, TargetVersion = kind == JournalKinds.RunStarted ? To : null,
                NodeOrder = kind == JournalKinds.RunStarted ? new List<string> { "node-1", "node-2", "node-3" } : null,
                Host = kind == JournalKinds.RunStarted ? Environment.MachineName : null, Pid = kind == JournalKinds.RunStarted ? pid : null,
            }, CancellationToken.None).GetAwaiter().GetResult();
        }
        void Mid(int pid)
        {
            Write(JournalKinds.RunStarted, null, pid);
            foreach (var s in new[] { "node-1/take-out", "node-1/stop", "node-1/put-back", "node-2/take-out", "node-2/stop", "node-2/start" })
            {
                Write(JournalKinds.StepBegin, s, pid);
                if (s != "node-2/start") Write(JournalKinds.StepDone, s, pid);
            }
        }

        Mid(Environment.ProcessId);
        var running = Status("-SkipProbe");
        Assert.Equal("Running", running.State);
        Assert.Equal("node-2/start", running.LastStep);
        Assert.Equal("node-2", running.OutOfRotation);
        Assert.Equal(new[] { "Done", "Begun", "NotStarted" }, running.Nodes.Select(n => n.Progress));
        Assert.StartsWith("Get-BbRollingUpgrade", running.NextCommand, StringComparison.Ordinal);
        Assert.Null(running.ClusterState);

        Mid(4_000_001); // above Linux's pid_max and Windows' usual range: a process that no longer runs
        var crashed = Status("-SkipProbe");
        Assert.Equal("Interrupted", crashed.State);
        Assert.Contains("-Resume", crashed.NextCommand, StringComparison.Ordinal);
    }

    [Fact]
    public void Profiles_come_from_the_pipeline_by_property_name_and_no_run_is_a_clear_error()
    {
        var (output, ps) = Run("Get-Item $p | Get-BbRollingUpgrade -JournalPath $j -SkipProbe");
        using (ps)
        {
            Assert.Empty(output);
            var error = Assert.Single(ps.Streams.Error);
            Assert.Equal("RollingUpgradeNotFound,BitbucketZdu.Cmdlets.GetBbRollingUpgradeCommand", error.FullyQualifiedErrorId);
            Assert.Contains("Invoke-BbRollingUpgrade -ProfilePath", error.Exception.Message, StringComparison.Ordinal);
        }
        Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false").Ps.Dispose();
        (output, ps) = Run("[pscustomobject]@{ ProfilePath = $p } | Get-BbRollingUpgrade -JournalPath $j -SkipProbe");
        using (ps) Assert.Equal("Completed", ((RollingUpgradeStatus)Assert.Single(output).BaseObject).State);
    }

    /// <summary>
    /// Before: after Ctrl+C the engine's warning (which node stays out, -Resume) was refused by the stopping pipeline and
    /// reached only the log; the screen showed the last VERBOSE line and the prompt.
    /// </summary>
    [Fact]
    public void Ctrl_C_mid_node_leaves_the_state_and_the_next_command_on_the_screen()
    {
        _factory.HoldStartOf = "node-2";
        SetVariables();
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Verbose");
        var invoke = ps.BeginInvoke();
        Assert.True(_factory.Held.Wait(TimeSpan.FromSeconds(60)), "the run did not reach node-2's start");

        ps.Stop();

        Assert.True(invoke.IsCompleted);
        var screen = string.Join("\n", _screen.WarningLines);
        Assert.Contains("node-2", screen, StringComparison.Ordinal);
        Assert.Contains($"Invoke-BbRollingUpgrade -ProfilePath {_profile} -Resume", screen, StringComparison.Ordinal);
        // The next command stands apart from the pointer to the status (it ran into it: "-Resume Get-BbRollingUpgrade ...").
        Assert.Contains($"-Resume (Get-BbRollingUpgrade -ProfilePath {_profile} shows it again.)", screen, StringComparison.Ordinal);
        Assert.Contains("Interrupted", screen, StringComparison.Ordinal);
        Canary.AssertAbsent(screen, "the screen");

        var status = Status("-SkipProbe");
        Assert.Equal("Interrupted", status.State);
        Assert.Equal("Interrupted", status.Nodes[1].Progress);
        Assert.Equal("start", status.Nodes[1].LastStep);
    }

    /// <summary>Before: "Waiting for node-1 to be OFFLINE" stayed up after the wait (no Completed record ever came).</summary>
    [Fact]
    public void Every_progress_bar_is_completed_and_a_child_wait_ends_when_its_step_does()
    {
        var (_, ps) = Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false");
        using (ps)
        {
            Assert.False(ps.HadErrors);
            var open = new Dictionary<int, ProgressRecord>();
            var records = ps.Streams.Progress.ToList();
            Assert.Contains(records, r => r.Activity.StartsWith("Waiting for node-1", StringComparison.Ordinal));
            foreach (var r in records)
            {
                if (r.RecordType == ProgressRecordType.Completed)
                {
                    open.Remove(r.ActivityId);
                    continue;
                }
                if (r.ActivityId == 1 && r.StatusDescription.StartsWith("Step ", StringComparison.Ordinal))
                    Assert.DoesNotContain(open.Values, c => c.ParentActivityId == 1);
                open[r.ActivityId] = r;
            }
            Assert.Empty(open.Values.Select(r => r.Activity));
        }
    }

    /// <summary>Before: "Outcome": 1, TimeSpans as Ticks/TotalDays, collection type names in CSV cells.</summary>
    [Fact]
    public void Reports_and_status_serialise_as_they_read_in_json_and_csv()
    {
        var (output, ps) = Run("""
            $r = Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false
            $r.Nodes | ConvertTo-Json -Depth 3
            $r.Nodes | ConvertTo-Csv -NoTypeInformation | Out-String
            $s = Get-BbRollingUpgrade -ProfilePath $p -JournalPath $j -SkipProbe
            $s | ConvertTo-Json -Depth 4
            $s | ConvertTo-Csv -NoTypeInformation | Out-String
            """);
        using (ps)
        {
            Assert.False(ps.HadErrors, string.Join("\n", ps.Streams.Error));
            var text = string.Join("\n", output.Select(o => o.ToString()));
            Assert.Matches("\"OutcomeName\":\\s*\"Upgraded\"", text);
            Assert.Matches("\"DrainSeconds\":\\s*[0-9.]+", text);
            Assert.Matches("\"State\":\\s*\"Completed\"", text);
            Assert.Contains("1. node-1: Done at put-back", text, StringComparison.Ordinal);
            Assert.DoesNotContain("System.Collections", text, StringComparison.Ordinal);
        }
    }

    /// <summary>Before: -WhatIf on a STABLE cluster listed eight steps; the real run refused with UpgradeModeOff naming POST /rest/zdu/start.</summary>
    [Fact]
    public void Node_upgrade_WhatIf_shows_the_refusal_of_the_real_run_naming_the_cmdlet()
    {
        var (output, ps) = Run("Invoke-BbNodeUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Name node-1 -WhatIf");
        using (ps)
        {
            Assert.Empty(output);
            var error = Assert.Single(ps.Streams.Error);
            Assert.Equal("UpgradeModeOff", error.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Contains("Enable-BbUpgradeMode", error.Exception.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("/rest/", error.Exception.Message, StringComparison.Ordinal);
            Assert.Empty(_f.World.Operations);
        }
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _runspace.Dispose();
        _f.Dispose();
    }
}
