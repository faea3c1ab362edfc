using System.Management.Automation;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.TestSupport;
using BitbucketZdu.Upgrade;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>The fake world behind the cmdlets' factory seam; the journal is a real file store.</summary>
internal sealed class FakeUpgradePortsFactory : IUpgradePortsFactory
{
    private readonly UpgradeFixture _f;

    public FakeUpgradePortsFactory(UpgradeFixture f) => _f = f;

    public UpgradeConnectionOptions? LastOptions { get; private set; }

    public UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options)
    {
        LastOptions = options;
        return FakePorts.Create(_f.World, new FileJournalStore(options.JournalPath ?? _f.Journal.Directory));
    }
}

/// <summary>The classes that swap the process-wide factory slot: one collection, so they never run in parallel.</summary>
[CollectionDefinition(Name)]
public sealed class UpgradePortsFactoryCollection
{
    public const string Name = "UpgradePortsFactory slot";
}

// Every test here swaps the process-wide factory slot: one collection, so they never run in parallel with each other
// (ProfileBadInputTests and BlobJournalCmdletTests swap it too).
[Collection(UpgradePortsFactoryCollection.Name)]
public sealed class UpgradeCmdletTests : IDisposable
{
    private readonly UpgradeFixture _f = new();
    private readonly PowerShellHost _ps = new();
    private readonly FakeUpgradePortsFactory _factory;
    private readonly IUpgradePortsFactory _previous = UpgradePortsFactory.Current;
    private readonly string _profile;

    public UpgradeCmdletTests()
    {
        _factory = new FakeUpgradePortsFactory(_f);
        UpgradePortsFactory.Current = _factory;
        _profile = Path.Combine(_f.Directory, "prod.psd1");
        var r = _ps.Run("New-BbClusterProfile -Path $p -ArchivePath $a -ArchiveSha256 $s -NodeName node-1,node-2,node-3", Vars());
        Assert.Null(r.FirstError);
    }

    private Dictionary<string, object?> Vars() => new()
    {
        ["p"] = _profile,
        ["a"] = _f.ArchivePath,
        ["s"] = PreflightCheck.Sha256Of(_f.ArchivePath),
        ["j"] = _f.Journal.Directory,
        ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
    };

    [Fact]
    public void The_template_is_commented_and_valid_once_filled_in()
    {
        var text = File.ReadAllText(_profile);
        Assert.Contains("# Check it with:  Test-BbClusterProfile", text);
        Assert.Contains("Member      = 'bitbucket/node-3'", text);

        var r = _ps.Run("Test-BbClusterProfile -ProfilePath $p -SkipProbe", Vars());

        Assert.Null(r.FirstError);
        var f = (PreflightFinding)Assert.Single(r.Output).BaseObject;
        Assert.Equal("ProfileValid", f.Check);
    }

    [Fact]
    public void Load_balancer_credentials_come_by_name_or_from_an_automation_asset_and_never_from_the_profile()
    {
        var text = File.ReadAllText(_profile);
        File.WriteAllText(_profile, text.Replace("Backend = 'bitbucket' }", "Backend = 'bitbucket'; CredentialAsset = 'lb-admin' }"));
        Assert.Contains("CredentialAsset = 'lb-admin'", File.ReadAllText(_profile));
        // Azure Automation's Get-AutomationPSCredential, stood in for by a function (it exists only in runbooks).
        const string Asset = "function Get-AutomationPSCredential { param([string] $Name) if ($Name -eq 'lb-admin') { $cred } else { throw \"no asset $Name\" } }; ";

        var r = _ps.Run(Asset + "Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j | Out-Null", Vars());
        Assert.Null(r.FirstError);
        var fromAsset = _factory.LastOptions!.LoadBalancerCredentials!["LB1"];
        Assert.Equal(Canary.UserName, fromAsset.UserName);
        Assert.Equal(Canary.Password, new System.Net.NetworkCredential("", fromAsset.Password).Password);

        // -LoadBalancerCredential wins over the asset.
        var other = new PSCredential("sp-app", Canary.Secure(Canary.Token));
        var vars = Vars();
        vars["other"] = other;
        r = _ps.Run(Asset + "Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j -LoadBalancerCredential @{ lb1 = $other } | Out-Null", vars);
        Assert.Null(r.FirstError);
        Assert.Equal("sp-app", _factory.LastOptions!.LoadBalancerCredentials!["lb1"].UserName);

        // Outside a runbook the asset cannot be read: a clear error, not a silent run without the credential.
        r = _ps.Run("Remove-Item function:Get-AutomationPSCredential; Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j", Vars());
        Assert.Equal("LoadBalancerCredentialAssetUnavailable", r.FirstError!.FullyQualifiedErrorId.Split(',')[0]);
        Assert.Contains("-LoadBalancerCredential", r.FirstError.Exception.Message, StringComparison.Ordinal);
        Canary.AssertAbsent(r.AllText, "the output");
        Canary.AssertAbsent(File.ReadAllText(_profile), "the profile");
    }

    [Fact]
    public void A_template_without_checksum_points_at_the_place_to_fill_in()
    {
        var bare = Path.Combine(_f.Directory, "bare.psd1");
        var r = _ps.Run("New-BbClusterProfile -Path $b | Out-Null; Test-BbClusterProfile -ProfilePath $b -SkipProbe", new Dictionary<string, object?> { ["b"] = bare });

        var findings = r.Output.Select(o => (PreflightFinding)o.BaseObject).ToList();
        var f = Assert.Single(findings, x => x.Severity == FindingSeverity.Error);
        Assert.Equal("Archive.Sha256", f.Place);
        Assert.Equal("ProfileInvalidValue", f.Check);
    }

    [Fact]
    public void New_profile_does_not_overwrite_and_WhatIf_writes_nothing()
    {
        var r = _ps.Run("New-BbClusterProfile -Path $p", Vars());
        Assert.Equal("NewBbClusterProfileExists,BitbucketZdu.Cmdlets.NewBbClusterProfileCommand", r.FirstError!.FullyQualifiedErrorId);

        var other = Path.Combine(_f.Directory, "other.psd1");
        _ps.Run("New-BbClusterProfile -Path $o -WhatIf", new Dictionary<string, object?> { ["o"] = other });
        Assert.False(File.Exists(other));
    }

    [Fact]
    public void Test_profile_probes_and_reports_a_missing_member_with_its_place()
    {
        _f.World["node-3"].MemberFound = false;

        var r = _ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j", Vars());

        Assert.Null(r.FirstError);
        var findings = r.Output.Select(o => (PreflightFinding)o.BaseObject).ToList();
        Assert.Contains(findings, x => x.Check == "PreflightMemberNotFound" && x.Place == "Nodes[2].Member");
        Assert.False((bool)_ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j -Quiet", Vars()).Output.Single().BaseObject);
        Assert.Empty(_f.World.Operations);
        Canary.AssertAbsent(r.AllText, "Test-BbClusterProfile output");
    }

    [Fact]
    public void An_invalid_profile_is_a_terminating_error_naming_the_place()
    {
        File.WriteAllText(_profile, File.ReadAllText(_profile).Replace("Service     = 'Systemd'", "Service     = 'Upstart'"));

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Confirm:$false", Vars());

        Assert.Equal("ProfileInvalidValue,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Contains("Nodes[0].Service", r.FirstError.Exception.Message);
        // The next step, where PowerShell shows it (Get-Error, $Error[0].ErrorDetails): fix that place, check with Test-BbClusterProfile.
        Assert.Contains("Nodes[0].Service", r.FirstError.ErrorDetails?.RecommendedAction);
        Assert.Contains("Test-BbClusterProfile", r.FirstError.ErrorDetails!.RecommendedAction);
        Assert.Equal(_profile, r.FirstError.TargetObject);
        Assert.Empty(_f.World.Operations);
    }

    /// <summary>Before: the -LogPath log carried a run id of its own (12 hex digits), the report and the journal another.</summary>
    [Fact]
    public async Task The_log_the_report_and_the_journal_carry_one_run_id()
    {
        var log = Path.Combine(_f.Directory, "run.jsonl");
        var vars = Vars();
        vars["log"] = log;

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -LogPath $log", vars);

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.Matches(@"^\d{8}T\d{6}Z-[0-9a-f]{6}$", report.RunId);
        var logged = File.ReadAllLines(log).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("run").GetString()).Distinct().ToList();
        Assert.Equal(new[] { report.RunId }, logged);
        var journal = await _f.ReadJournal();
        Assert.NotEmpty(journal);
        Assert.All(journal, e => Assert.Equal(report.RunId, e.RunId));
    }

    [Fact]
    public async Task WhatIf_returns_the_plan_and_changes_nothing()
    {
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -WhatIf", Vars());

        Assert.Null(r.FirstError);
        var plan = (UpgradePlan)Assert.Single(r.Output).BaseObject;
        Assert.Equal(27, plan.Steps.Count);
        Assert.Equal("8.19.4", plan.TargetVersion);
        Assert.Empty(_f.World.Operations);
        Assert.Empty(await _f.ReadJournal());
    }

    [Fact]
    public void A_non_interactive_run_upgrades_every_node_calls_hooks_and_returns_the_report()
    {
        var r = _ps.Run("""
            $global:seen = [System.Collections.Generic.List[string]]::new()
            Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Verbose -Hook @{
                NodeUpgraded = { $global:seen.Add("upgraded " + $_.Node) }
                Completed    = { param($e) $global:seen.Add("done " + $e.Report.NodesUpgraded) }
            }
            """, Vars());

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.True(report.Succeeded);
        Assert.Equal(3, report.NodesUpgraded);
        Assert.True(_f.World.AllOn(To));
        var seen = _ps.Run("$global:seen").Output.Select(o => o.BaseObject.ToString()).ToList();
        Assert.Equal(new[] { "upgraded node-1", "upgraded node-2", "upgraded node-3", "done 3" }, seen);
        Assert.Contains(r.Verbose, v => v.Contains("[node-2/stop]"));
        Canary.AssertAbsent(r.AllText, "Invoke-BbRollingUpgrade output");
        Canary.AssertAbsent(File.ReadAllText(_f.Journal.JournalFile("prod")), "the journal");
        Assert.Equal(Canary.UserName, _factory.LastOptions!.Credential!.UserName);
    }

    [Fact]
    public void A_failed_node_halts_with_a_clear_error_and_the_report_then_resume_finishes()
    {
        _f.World["node-2"].FailStartOnVersion = To;

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false", Vars());

        var error = r.FirstError!;
        Assert.Equal("UpgradeNodeFailed,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand", error.FullyQualifiedErrorId);
        Assert.Contains("back in rotation", error.Exception.Message);
        Assert.Contains("-Resume", error.Exception.Message);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.False(report.Succeeded);
        Assert.Equal(NodeOutcome.RolledBack, report.Nodes.Single(n => n.Name == "node-2").Outcome);

        _f.World["node-2"].FailStartOnVersion = null;
        var resumed = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume", Vars());
        Assert.Null(resumed.FirstError);
        Assert.True(((UpgradeReport)resumed.Output.Single().BaseObject).Succeeded);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-1:stop"));
    }

    [Fact]
    public void Without_Confirm_false_a_host_that_cannot_prompt_changes_nothing()
    {
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j", Vars());

        Assert.NotNull(r.FirstError);
        Assert.Empty(r.Output);
        Assert.Empty(_f.World.Operations);
        Assert.False(_f.World.UpgradeMode);
    }

    [Fact]
    public void Node_upgrade_takes_nodes_from_the_pipeline_by_property_name()
    {
        _f.World.StartUpgradeMode();

        var r = _ps.Run("[pscustomobject]@{ Name = 'node-3' } | Invoke-BbNodeUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false", Vars());

        Assert.Null(r.FirstError);
        var report = (NodeUpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.Equal("node-3", report.Name);
        Assert.Equal(NodeOutcome.Upgraded, report.Outcome);
        Assert.Equal(To, _f.World["node-3"].InstalledVersion);
        Assert.Equal(From, _f.World["node-1"].InstalledVersion);
    }

    [Theory]
    [InlineData("[int]::Parse('not a number') | Out-Null")]          // a .NET exception: statement-terminating
    [InlineData("Write-Error 'smoke test of the new version failed'")] // a non-terminating error, as from a failed check
    public void A_hook_whose_command_fails_halts_the_phase_before_finalize(string failingCommand)
    {
        // A hook is a gate: an error inside it must stop what follows (here the approve), not be printed and passed.
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Hook @{ Finalizing = { "
            + failingCommand + "; $global:afterFailure = $true } }", Vars());

        Assert.NotNull(r.FirstError);
        Assert.Equal(0, _f.World.Count("cluster:approve"));
        Assert.True(_f.World.UpgradeMode);
        Assert.Null(_ps.Run("$global:afterFailure").Output.SingleOrDefault()?.BaseObject);
    }

    [Fact]
    public void An_unknown_hook_phase_is_refused_before_any_change()
    {
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Hook @{ AfterLunch = { } }", Vars());
        Assert.Equal("UpgradeInvalidHook,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Empty(_f.World.Operations);
    }

    [Fact]
    public void The_default_factory_needs_a_credential_and_says_how_to_give_one()
    {
        UpgradePortsFactory.Current = new DefaultUpgradePortsFactory();
        _ps.Run("Disconnect-BbCluster");

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -JournalPath $j -Confirm:$false", Vars());

        Assert.Equal("UpgradeNoCredential,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Contains("Connect-BbCluster", r.FirstError.Exception.Message);
    }

    [Fact]
    public void The_format_views_render_the_report_plan_and_findings()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "module", "Upgrade.Format.ps1xml"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var vars = Vars();
        vars["fmt"] = Path.Combine(dir!.FullName, "module", "Upgrade.Format.ps1xml");

        var r = _ps.Run("""
            Update-FormatData -PrependPath $fmt
            Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -WhatIf | Out-String -Width 250
            $report = Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false
            $report | Out-String -Width 250
            $report.Nodes | Out-String -Width 250
            Test-BbClusterProfile -ProfilePath $p -SkipProbe | Out-String -Width 250
            """, vars);

        Assert.Null(r.FirstError);
        var text = string.Join("\n", r.Output.Select(o => o.ToString()));
        Assert.Matches(@"Summary\s+: Cluster prod upgraded from 8\.19\.3 to 8\.19\.4: 3/3 nodes, state STABLE", text);
        Assert.Contains("out of rotation", text);
        Assert.Contains("Overhead(s)", text);
        Assert.Contains("ProfileValid", text);
        Assert.Matches(@"Upgrade\s+: 8\.19\.3 -> 8\.19\.4", text);
        Assert.Contains("27. https://bitbucket.example.com/: Wait until the cluster is STABLE on 8.19.4", text);
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _ps.Dispose();
        _f.Dispose();
    }
}
