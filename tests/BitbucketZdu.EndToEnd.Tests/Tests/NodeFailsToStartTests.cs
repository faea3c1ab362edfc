using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>The first node's new version ends its start in ERROR: rolled back, back in rotation, run halted and explained, then resumed.</summary>
public sealed class NodeFailsToStartTests
{
    private readonly ITestOutputHelper _output;

    public NodeFailsToStartTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Node_that_fails_to_start_is_rolled_back_the_run_halts_and_resume_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var struck = new StrongBox<string?>();
        Task? clearAfterError = null;
        // Out of rotation, before its stop: its next start (the new version) ends in ERROR. Once the node shows ERROR the
        // fault is cleared, so the rollback's start of the old version is a normal start.
        var hook = E2eLab.Once("NodeOutOfRotation", node =>
        {
            lab.Cluster.SetFault(node, """{"failStart": true}""");
            clearAfterError = Task.Run(async () =>
            {
                using var http = lab.Http(TimeSpan.FromSeconds(2));
                await Eventually.UntilAsync(async () => (await http.GetStringAsync(new Uri(lab.Node(node).Url, "bbsim/node"))).Contains("\"ERROR\""),
                    TimeSpan.FromSeconds(30), $"{node} in ERROR", TimeSpan.FromMilliseconds(50));
                lab.Cluster.ClearFault(node);
            });
        }, struck);

        var run = await lab.InvokeRollingUpgradeAsync(hook: hook);
        await clearAfterError!;
        var failedNode = struck.Value!;
        lab.Print($"{failedNode} fails to start", run);

        Assert.False(run.Succeeded);
        Assert.NotNull(run.ErrorId);
        Assert.Contains(failedNode, run.ErrorMessage);
        Assert.Matches("(?i)resume", run.ErrorMessage + run.Report?.NextStep);
        var nodeReport = run.Report!.Nodes.Single(n => n.Name == failedNode);
        Assert.Equal(NodeOutcome.RolledBack, nodeReport.Outcome);
        Assert.Equal(0, run.Report.NodesUpgraded);
        // The failed node runs the old version again and is back in rotation; the cluster kept serving.
        var cluster = await lab.ClusterStateAsync();
        Assert.All(cluster.Nodes, n => Assert.Equal("8.19.3", n.Version));
        await lab.AssertAllInRotationAsync();
        var journal = JournalRun.Last(await lab.JournalAsync())!.Entries;
        Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Node == failedNode);
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackDone && e.Node == failedNode);
        Assert.Equal(JournalKinds.RunHalted, journal.Last().Kind);
        var failedDuringFault = lab.Load.Failed;
        lab.Record("node fails to start (ERROR)", $"{failedNode} rolled back to 8.19.3 and back in rotation; run halted", run.ErrorId,
            $"next step: {run.Report.NextStep}");

        var resumed = await lab.InvokeRollingUpgradeAsync("-Resume");
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("resume after the failed start", resumed);
        Assert.True(resumed.Succeeded, resumed.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed ({failedDuringFault} during the fault): {lab.Load.FailureSummary}");
        lab.Record("node fails to start, then -Resume", "upgraded 3/3, STABLE", null);
    }
}
