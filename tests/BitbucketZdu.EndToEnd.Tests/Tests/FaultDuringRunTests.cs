using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>Faults that strike while a node is out of rotation: the outcome, the cluster still serving, the report and journal truthful.</summary>
public sealed class FaultDuringRunTests
{
    private readonly ITestOutputHelper _output;

    public FaultDuringRunTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Api_5xx_burst_during_the_run_is_retried_and_the_upgrade_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var struck = new StrongBox<string?>();
        var run = await lab.InvokeRollingUpgradeAsync(hook: E2eLab.Once("NodeOutOfRotation",
            _ => lab.Cluster.SetFault("cluster", """{"apiErrorCount": 3, "apiErrorStatus": 503}"""), struck));
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("API 503 burst", run);

        Assert.True(run.Succeeded, run.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("API 5xx burst (3 x 503 on every node) during the run", "retried; upgraded 3/3, STABLE", null);
    }

    [Fact]
    public async Task A_second_run_against_the_same_cluster_is_refused_by_the_lock()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        UpgradeRun? second = null;
        using var otherSession = new ModuleSession();
        var run = await lab.InvokeRollingUpgradeAsync(hook: E2eLab.Once("NodeOutOfRotation",
            _ => second = lab.InvokeRollingUpgradeAsync(session: otherSession).GetAwaiter().GetResult(), new StrongBox<string?>()));
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("second run (refused)", second!);
        lab.Print("first run", run);

        Assert.Equal("JournalLocked", second!.ErrorId);
        Assert.True(run.Succeeded, run.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("second run against the same cluster", "refused by the lock; the first run upgraded 3/3", second.ErrorId, second.ErrorMessage);
    }

    [Fact]
    public async Task Upgrade_mode_cancelled_behind_our_back()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var struck = new StrongBox<string?>();
        var run = await lab.InvokeRollingUpgradeAsync(hook: E2eLab.Once("NodeOutOfRotation", node =>
        {
            using var api = lab.ApiClient(lab.Cluster.Nodes.First(n => n.Name != node).Url);
            api.CancelAsync().GetAwaiter().GetResult();
        }, struck));
        lab.Print("upgrade mode cancelled behind our back", run);
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        var cluster = await lab.ClusterStateAsync();
        _output.WriteLine($"cluster after: {cluster.State}, upgrade mode {cluster.UpgradeModeEnabled}, " + string.Join(", ", cluster.Nodes.Select(n => $"{n.Name} {n.State} {n.Version}")));
        _output.WriteLine("journal: " + string.Join(" | ", JournalRun.Last(await lab.JournalAsync())!.Entries.TakeLast(6).Select(e => e.Kind + " " + e.Step + " " + e.Message)));

        Assert.False(run.Succeeded);
        // The halt names the real cause and a fresh run as the way forward, not the node's start.
        Assert.Equal("UpgradeModeCancelled", run.ErrorId);
        Assert.Contains("cancelled by someone else", run.ErrorMessage);
        Assert.Contains("back in rotation", run.ErrorMessage);
        Assert.DoesNotContain("See its logs", run.ErrorMessage);
        Assert.Equal(3, cluster.Nodes.Count(n => n.State == NodeState.ACTIVE));
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("upgrade mode cancelled behind our back", $"run halted; {struck.Value} {run.Report?.Nodes.FirstOrDefault(n => n.Name == struck.Value)?.Outcome}; cluster {cluster.State}", run.ErrorId, run.ErrorMessage);
    }

    [Fact]
    public async Task Node_hanging_on_stop()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var profile = lab.Profile();
        ((System.Collections.Hashtable)profile["Timeouts"]!)["StopSeconds"] = 3;
        var struck = new StrongBox<string?>();
        var run = await lab.InvokeRollingUpgradeAsync(profile: profile,
            hook: E2eLab.Once("NodeOutOfRotation", node => lab.Cluster.SetFault(node, """{"hangOnStop": true}"""), struck));
        lab.Print($"{struck.Value} hangs on stop", run);
        var cluster = await lab.ClusterStateAsync();
        _output.WriteLine($"cluster after: {cluster.State}, upgrade mode {cluster.UpgradeModeEnabled}, " + string.Join(", ", cluster.Nodes.Select(n => $"{n.Name} {n.State} {n.Version}")));
        _output.WriteLine("journal: " + string.Join(" | ", JournalRun.Last(await lab.JournalAsync())!.Entries.TakeLast(6).Select(e => e.Kind + " " + e.Step + " " + e.Message)));
        lab.Cluster.ClearFault(struck.Value!);

        Assert.False(run.Succeeded);
        Assert.NotNull(run.ErrorId);
        Assert.Contains(struck.Value!, run.ErrorMessage);
        Assert.Contains("still running", run.ErrorMessage);
        Assert.Matches("(?i)-Resume", run.ErrorMessage);
        // In the rolling upgrade's terms (the profile's Timeouts.StopSeconds), not Stop-BbNode's (-Timeout, -Force).
        Assert.Equal("UpgradeNodeStopTimeout", run.ErrorId);
        Assert.Contains("left OUT of rotation on purpose", run.ErrorMessage);
        Assert.Contains("Timeouts.StopSeconds", run.ErrorMessage);
        Assert.DoesNotContain("-Force", run.ErrorMessage);
        Assert.DoesNotContain("[]", run.ErrorMessage);
        // The hung node (TERMINATING: it takes no new connections) stays out of rotation; the other two keep serving.
        await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames.Where(n => n != struck.Value));
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("node hangs on stop", $"run halted after the stop timeout; {struck.Value} left out of rotation (hung in TERMINATING, cannot serve); the error names the next step",
            run.ErrorId, run.ErrorMessage);

        // The way forward the error names: end the hung process by hand, then -Resume completes the upgrade.
        var pid = int.Parse(File.ReadAllText(Path.Combine(lab.Node(struck.Value!).Home, "bitbucket.pid")).Trim());
        System.Diagnostics.Process.GetProcessById(pid).Kill();
        var resumed = await lab.InvokeRollingUpgradeAsync("-Resume", profile);
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("resume after killing the hung node", resumed);
        Assert.True(resumed.Succeeded, resumed.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("node hangs on stop, killed by hand, then -Resume", "upgraded 3/3, STABLE", null);
    }
}
