using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>A rolling upgrade done by hand with the bin scripts, as the vendor procedure describes it.</summary>
public sealed class RollingUpgradeTests
{
    [Fact]
    public async Task Manual_rolling_upgrade_with_the_scripts_ends_STABLE_on_the_new_version()
    {
        await using var c = await SimCluster.StartAsync(3);
        using var client = c.Client();

        var started = await client.StartAsync();
        Assert.Equal(ClusterState.READY_TO_UPGRADE, started.State);

        for (var i = 0; i < c.Nodes.Count; i++)
        {
            var node = c.Nodes[i];
            using var api = c.Client(i == 0 ? 1 : 0);   // ask a node that stays up
            var (code, output) = await c.StopNodeAsync(node);
            Assert.True(code == 0, output);
            var offline = await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.OFFLINE, $"{node.Name} OFFLINE", via: i == 0 ? 1 : 0);
            // OFFLINE nodes do not count: before the first upgraded node joins, cancel is still possible; with the last
            // old node OFFLINE, every node left runs the new version.
            Assert.Equal(i == 0 ? ClusterState.READY_TO_UPGRADE : i == c.Nodes.Count - 1 ? ClusterState.READY_TO_RUN_UPGRADE_TASKS : ClusterState.MIXED, offline.State);

            var newInstall = await c.InstallAsync(node, "8.19.4");
            Assert.NotEqual(node.InstallDir, newInstall);
            await c.StartNodeAsync(node, newInstall);
            var joined = await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == node.Name && n.State == NodeState.ACTIVE && n.Version == "8.19.4"),
                $"{node.Name} ACTIVE on 8.19.4", via: i == 0 ? 1 : 0);

            if (i < c.Nodes.Count - 1)
            {
                Assert.Equal(ClusterState.MIXED, joined.State);
                Assert.Equal("8.19.3", joined.OriginalVersion);
                Assert.Empty(joined.AllowedActions);
                await ConformanceTests.AssertConflict(() => api.CancelAsync());
                await ConformanceTests.AssertConflict(() => api.ApproveAsync());
            }
            else
            {
                Assert.Equal(ClusterState.READY_TO_RUN_UPGRADE_TASKS, joined.State);
                Assert.Equal(new[] { "approve" }, joined.AllowedActions);
                await ConformanceTests.AssertConflict(() => api.CancelAsync());
            }
        }

        using var upgraded = c.Client();
        var done = await upgraded.ApproveAsync();
        Assert.Equal(ClusterState.STABLE, done.State);
        Assert.False(done.UpgradeModeEnabled);
        Assert.Null(done.OriginalVersion);
        Assert.All(done.Nodes, n => Assert.Equal(("8.19.4", NodeState.ACTIVE), (n.Version, n.State)));
        Assert.Equal(new[] { "start" }, done.AllowedActions);

        // The old version may no longer join: the "database" is on 8.19.4 now.
        Assert.Equal(0, (await c.StopNodeAsync(c.Nodes[2])).ExitCode);
        await c.StartNodeAsync(c.Nodes[2], System.IO.Path.Combine(c.Nodes[2].InstallRoot, "atlassian-bitbucket-8.19.3"));
        var refused = await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == "node-3" && n.State == NodeState.ERROR), "node-3 on 8.19.3 in ERROR");
        Assert.Equal("8.19.3", refused.Nodes.Single(n => n.Name == "node-3").Version);
        Assert.Contains("lower version", c.Nodes[2].Log);
    }

    [Fact]
    public async Task A_newer_version_needs_upgrade_mode_and_a_non_bugfix_release_never_joins()
    {
        await using var c = await SimCluster.StartAsync(2);
        var node = c.Nodes[1];
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);

        // Upgrade mode off and another node running: a newer bug-fix release is refused.
        await c.StartNodeAsync(node, await c.InstallAsync(node, "8.19.4"));
        var refused = await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == node.Name && n.State == NodeState.ERROR), "8.19.4 refused without upgrade mode");
        Assert.Equal(ClusterState.STABLE, refused.State);   // the plugin computes STABLE whenever upgrade mode is off
        Assert.Contains("Enable upgrade mode", node.Log);
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);

        using var client = c.Client();
        await client.StartAsync();
        await c.StartNodeAsync(node, await c.InstallAsync(node, "8.20.0"));
        var mixed = await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == node.Name && n.State == NodeState.ERROR), "8.20.0 refused in upgrade mode");
        Assert.Equal(ClusterState.MIXED, mixed.State);   // any ERROR node in upgrade mode
        await ConformanceTests.AssertConflict(() => client.CancelAsync());

        // The vendor's remedy: stop the node in ERROR gracefully. It was not in the snapshot taken at start (it was
        // stopped then), so it leaves the list instead of showing OFFLINE.
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
        var back = await c.WaitForAsync(x => x.Nodes.All(n => n.Name != node.Name), "the ERROR node gone");
        Assert.Equal(ClusterState.READY_TO_UPGRADE, back.State);
    }
}
