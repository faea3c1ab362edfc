using System.Diagnostics;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Invoke-BbRollingUpgrade in a child pwsh, SIGKILLed at an exact journal line, then -Resume in a new process.
/// Deterministic: the child's -Hook (StepStarting / StepDone, called right after the step-begin / step-done line is in
/// the journal) writes a "reached" file and waits for a file that never appears; the test polls for "reached" and
/// SIGKILLs the child while it is parked there, so the journal's last line is exactly the struck one.
/// </summary>
/// <remarks>
/// Every journaled step is struck once. Node steps at their BEGIN (the state left by the previous step's done, with the
/// step itself not started) plus put-back at its DONE (the node finished, the next not started): take-out (node still in
/// rotation), stop (drained, running), wait-offline (process gone), install (OFFLINE, old install), start (new install,
/// stopped), health-gate (new version starting), put-back (healthy, out of rotation), put-back done. Cluster steps:
/// pre-stage done (the first node's; the others may be half extracted), enable-upgrade-mode begin (the POST not sent)
/// and done (before the first node), finalize begin (every node on the target, approve not sent) and done (approved,
/// wait-stable not started). To stay fast the kills share a lab in three chains: each resumed run is killed again at the
/// chain's next point (the first node that reaches it in that process), and the last -Resume must complete.
/// </remarks>
public sealed class KillAndResumeTests
{
    private readonly ITestOutputHelper _output;

    public KillAndResumeTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData("pre-stage:done take-out:begin wait-offline:begin start:begin")]
    [InlineData("enable-upgrade-mode:begin stop:begin install:begin health-gate:begin")]
    [InlineData("enable-upgrade-mode:done put-back:begin put-back:done finalize:begin finalize:done")]
    public async Task Killed_at_journal_steps_and_resumed_in_a_new_process_completes(string chain)
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var profile = lab.WriteProfile();
        var points = chain.Split(' ').Select(KillPoint.Parse).ToList();
        var timings = new List<(KillPoint point, string step, TimeSpan took)>();
        for (var i = 0; i < points.Count; i++)
        {
            var point = points[i];
            var sw = Stopwatch.StartNew();
            var reached = Path.Combine(lab.Dir, $"reached-{i}");
            string struckStep;
            await using (var child = ChildPwsh.StartUpgrade(profile, resume: i > 0, point.Hook(reached, Path.Combine(lab.Dir, "never"))))
            {
                await Eventually.UntilAsync(() =>
                {
                    if (child.HasExited) throw new InvalidOperationException($"the run ended before {point}: {child.Output}");
                    return File.Exists(reached);
                }, TimeSpan.FromSeconds(180), $"the child run to reach {point}", TimeSpan.FromMilliseconds(20));
                child.KillNow();
                Assert.True(await child.WaitForExitAsync(TimeSpan.FromSeconds(10)), "pwsh did not die on SIGKILL");
                Canary.AssertAbsent(child.Output, "the killed run's output");
                struckStep = File.ReadAllText(reached).Trim();
            }
            var journal = await lab.JournalAsync();
            var last = journal[^1];
            _output.WriteLine($"kill {i + 1}: at {point.Kind} {struckStep} after {sw.Elapsed.TotalSeconds:0.0} s; the journal's last line: {last.Kind} {last.Step}");
            Assert.EndsWith("/" + point.Step, struckStep);
            if (point.Step == "pre-stage")
            {
                // Pre-stage runs on every node at once: the other nodes' lines may follow the struck one.
                Assert.EndsWith("/pre-stage", last.Step);
                Assert.DoesNotContain(journal, e => e.Kind == JournalKinds.StepBegin && e.Step == PlanStepKeys.EnableUpgradeMode);
            }
            else
            {
                Assert.Equal(point.Kind, last.Kind);
                Assert.Equal(struckStep, last.Step);
                Assert.Equal(struckStep.StartsWith("cluster/", StringComparison.Ordinal) ? null : struckStep.Split('/')[0], last.Node);
            }
            await AssertRealityAsync(lab, point, last.Node);
            timings.Add((point, struckStep, sw.Elapsed));
        }

        var resumeWatch = Stopwatch.StartNew();
        await using var final = ChildPwsh.StartUpgrade(profile, resume: true);
        Assert.True(await final.WaitForExitAsync(TimeSpan.FromSeconds(240)), "the resumed run did not finish: " + final.Output);
        Canary.AssertAbsent(final.Output, "the resumed run's output");
        _output.WriteLine(final.Output.Trim());
        Assert.Contains("RESULT", final.Output);
        Assert.Contains("3/3", final.Output);

        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        await lab.AssertClusterOnAsync("8.19.4");
        var all = await lab.JournalAsync();
        var run = JournalRun.Last(all)!.Entries;
        Assert.Equal(points.Count, run.Count(e => e.Kind == JournalKinds.RunResumed));
        Assert.Equal(JournalKinds.RunCompleted, run[^1].Kind);
        // Each step is done once at most per process; none is left begun without a done, failed or skip after it.
        foreach (var begun in run.Where(e => e.Kind == JournalKinds.StepBegin).Select(e => e.Step).Distinct())
            Assert.Contains(run, e => e.Step == begun && (e.Kind == JournalKinds.StepDone || e.Kind == JournalKinds.StepSkipped));
        _output.WriteLine($"final -Resume {resumeWatch.Elapsed.TotalSeconds:0.0} s; user requests {lab.Load.Total}, failed {lab.Load.Failed} {lab.Load.FailureSummary}");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        foreach (var (point, step, took) in timings)
            lab.Record($"process killed at {point.Kind} {point.Step}, then -Resume",
                (point.Step == "pre-stage" ? "journal ends on a pre-stage line (every node pre-stages at once)" : "journal ends on the struck line")
                + "; -Resume upgraded 3/3, STABLE, all in rotation", null,
                $"SIGKILL at {point.Kind} {step} in a chain of {points.Count} kills ({chain}); {took.TotalSeconds:0} s to the kill");
    }

    /// <summary>What the journal's last line says is what the cluster, the load balancer and the node show.</summary>
    private async Task AssertRealityAsync(E2eLab lab, KillPoint point, string? node)
    {
        // Through the load balancer: the struck node may be down.
        using var client = lab.ApiClient(lab.Front.Frontend);
        var cluster = await client.GetClusterAsync();
        _output.WriteLine($"  cluster {cluster.State}, upgrade mode {(cluster.UpgradeModeEnabled ? "on" : "off")}: "
            + string.Join(", ", cluster.Nodes.Select(n => $"{n.Name} {n.State} {n.Version}")));
        switch (point.Step)
        {
            case "pre-stage":
            case "enable-upgrade-mode" when point.Kind == JournalKinds.StepBegin:
                Assert.False(cluster.UpgradeModeEnabled, "upgrade mode is on before the POST");
                Assert.All(cluster.Nodes, n => Assert.Equal("8.19.3", n.Version));
                return;
            case "enable-upgrade-mode":
            case "finalize" when point.Kind == JournalKinds.StepBegin:
                Assert.True(cluster.UpgradeModeEnabled, "upgrade mode is off");
                return;
            case "finalize":
                Assert.False(cluster.UpgradeModeEnabled, "upgrade mode is still on after finalize");
                return;
        }

        var profile = ClusterProfileReader.Read(lab.Profile(), lab.ProfilePath);
        using var rotation = new LoadBalancerRotation(profile);
        var struck = profile.FindNode(node!)!;
        var inRotation = point.Step == "take-out" || (point.Step == "put-back" && point.Kind == JournalKinds.StepDone);
        Assert.Equal(inRotation ? RotationState.InRotation : RotationState.OutOfRotation, await rotation.GetStateAsync(struck, CancellationToken.None));
        var api = cluster.Nodes.Where(n => n.Name == node).OrderBy(n => n.State == NodeState.OFFLINE).FirstOrDefault();
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(new LocalShell()));
        var state = await host.GetStateAsync(struck, CancellationToken.None);
        _output.WriteLine($"  {node}: {(inRotation ? "in" : "out of")} rotation, install dir {state.InstalledVersion}, process {(state.ProcessRunning ? "running" : "stopped")}, API {api?.State} {api?.Version}");
        var (version, running) = point.Step switch
        {
            "take-out" or "stop" => ("8.19.3", true),
            "wait-offline" or "install" => ("8.19.3", false),
            "start" => ("8.19.4", false),
            _ => ("8.19.4", true),
        };
        Assert.Equal(version, state.InstalledVersion);
        Assert.Equal(running, state.ProcessRunning);
        switch (point.Step)
        {
            case "take-out":
            case "stop":
                Assert.Equal(NodeState.ACTIVE, api?.State);
                Assert.Equal("8.19.3", api?.Version);
                break;
            case "install":
            case "start":
                Assert.True(api is null || api.State == NodeState.OFFLINE, $"{node} is {api?.State}, not OFFLINE");
                break;
            case "put-back":
                Assert.Equal(NodeState.ACTIVE, api?.State);
                Assert.Equal("8.19.4", api?.Version);
                break;
        }
    }

    /// <summary>A journal line to kill at: a step key suffix ("stop", "finalize") and begin or done.</summary>
    private sealed record KillPoint(string Step, string Kind)
    {
        public static KillPoint Parse(string text)
        {
            var parts = text.Split(':');
            return new KillPoint(parts[0], parts[1] == "begin" ? JournalKinds.StepBegin : JournalKinds.StepDone);
        }

        /// <summary>
        /// -Hook for the child: at the first step ending in /Step, after its line is journaled, publish the step key in
        /// <paramref name="reached"/> (written aside, then moved: never read half-written) and park on a file that never appears.
        /// </summary>
        public string Hook(string reached, string never)
        {
            var phase = Kind == JournalKinds.StepBegin ? "StepStarting" : "StepDone";
            return $"-Hook @{{ '{phase}' = {{ if ($_.Step -like '*/{Step}' -and -not (Test-Path -LiteralPath '{reached}')) {{ " +
                $"[IO.File]::WriteAllText('{reached}.tmp', $_.Step); [IO.File]::Move('{reached}.tmp', '{reached}'); " +
                $"while (-not (Test-Path -LiteralPath '{never}')) {{ Start-Sleep -Milliseconds 100 }} }} }} }}";
        }

        public override string ToString() => $"{Kind} */{Step}";
    }
}
