using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>-StopAfter 1: one canary node, a clean pause with every node in rotation at the load balancer, then -Resume completes.</summary>
public sealed class StopAfterTests
{
    private readonly ITestOutputHelper _output;

    public StopAfterTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task StopAfter_1_pauses_with_every_node_in_rotation_and_Resume_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);

        var paused = await lab.InvokeRollingUpgradeAsync("-StopAfter 1");
        lab.Print("-StopAfter 1", paused);

        Assert.True(paused.ErrorId is null, paused.ErrorMessage);
        var report = paused.Report!;
        Assert.True(report.Paused, report.Summary);
        Assert.Equal(1, report.Nodes.Count(n => n.Outcome == NodeOutcome.Upgraded));
        // While paused: every node in rotation, checked at the load balancer and by users reaching each node.
        await lab.AssertAllInRotationAsync();
        var cluster = await lab.ClusterStateAsync();
        Assert.Equal(ClusterState.MIXED, cluster.State);
        Assert.True(cluster.UpgradeModeEnabled);
        Assert.Equal(1, cluster.Nodes.Count(n => n.Version == "8.19.4"));
        Assert.Equal(JournalKinds.RunPaused, JournalRun.Last(await lab.JournalAsync())!.LastEntry.Kind);
        lab.Record("-StopAfter 1", "1 node on 8.19.4, MIXED, upgrade mode on, all in rotation; journal run-paused", null);

        var resumed = await lab.InvokeRollingUpgradeAsync("-Resume");
        lab.Print("-Resume after the pause", resumed);
        Assert.True(resumed.Succeeded, resumed.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        await lab.AssertAllInRotationAsync(); // users still running: each node must serve new requests
        await lab.Load.StopAsync();
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("-StopAfter 1, then -Resume", "upgraded 3/3, STABLE", null);
    }
}
