using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Bitbucket gives a node a new id each time it starts (the simulator too: bbsim.node.id.stable=false, the lab's
/// default). The engine matches nodes by name or address, never by id: the upgrade completes and the report and the
/// journal name every node as the profile does.
/// </summary>
public sealed class NodeIdChangeTests
{
    private readonly ITestOutputHelper _output;

    public NodeIdChangeTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Node_ids_change_on_restart_and_the_upgrade_still_matches_every_node()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var before = Ids(await lab.ClusterStateAsync());

        var run = await lab.InvokeRollingUpgradeAsync();
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("upgrade with node ids changing on restart", run);
        var cluster = await lab.ClusterStateAsync();
        var after = Ids(cluster);
        foreach (var name in lab.NodeNames)
            _output.WriteLine($"{name}: id {before[name]} -> {after[name]}");

        Assert.True(run.Succeeded, run.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.Equal(lab.NodeNames.OrderBy(n => n), before.Keys.OrderBy(n => n));
        Assert.Equal(lab.NodeNames.OrderBy(n => n), after.Keys.OrderBy(n => n));
        Assert.All(lab.NodeNames, n => Assert.NotEqual(before[n], after[n]));
        Assert.Equal(6, after.Values.Concat(before.Values).Distinct().Count());

        // The report names each profile node once, upgraded.
        var report = run.Report!;
        Assert.Equal(lab.NodeNames.OrderBy(n => n), report.Nodes.Select(n => n.Name).OrderBy(n => n));
        Assert.All(report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
        // The journal names nodes by profile name (never an id), every node step done once.
        var entries = JournalRun.Last(await lab.JournalAsync())!.Entries;
        Assert.All(entries.Where(e => e.Node is not null), e => Assert.Contains(e.Node!, lab.NodeNames));
        Assert.DoesNotContain(entries, e => before.Values.Concat(after.Values).Any(id => (e.Node ?? "").Contains(id) || (e.Step ?? "").Contains(id)));
        foreach (var name in lab.NodeNames)
            Assert.Equal(1, entries.Count(e => e.Kind == JournalKinds.StepDone && e.Step == name + "/put-back"));
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("node id changes on restart", "every node matched by name; upgraded 3/3, STABLE; report and journal name the profile's nodes", null,
            "ids " + string.Join(", ", lab.NodeNames.Select(n => $"{n} {before[n]}->{after[n]}")));
    }

    private static Dictionary<string, string> Ids(ZduCluster cluster) =>
        cluster.Nodes.Where(n => n.State != NodeState.OFFLINE).ToDictionary(n => n.Name!, n => n.Id!);
}
