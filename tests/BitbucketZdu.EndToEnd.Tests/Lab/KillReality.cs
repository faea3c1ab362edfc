using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// After a kill parked at a journal line: what that line says is what the cluster, the load balancer and the node show
/// (upgrade mode; the struck node's rotation, installed version, process and API state). A journal that ran ahead of
/// the world, or behind it, is what -Resume would act on wrongly.
/// </summary>
public static class KillReality
{
    /// <summary>A node's steps in journal order; a line's state index is its step's index (begin) or index + 1 (done).</summary>
    private static readonly string[] NodeSteps = { "take-out", "stop", "wait-offline", "install", "start", "health-gate", "put-back" };

    public static async Task AssertAsync(E2eLab lab, JournalLine line, string from, string to, ITestOutputHelper? output)
    {
        // Through the load balancer: the struck node may be down.
        using var client = lab.ApiClient(lab.Front.Frontend);
        var cluster = await client.GetClusterAsync();
        output?.WriteLine($"    cluster {cluster.State}, upgrade mode {(cluster.UpgradeModeEnabled ? "on" : "off")}: "
            + string.Join(", ", cluster.Nodes.Select(n => $"{n.Name} {n.State} {n.Version}")));
        var done = line.Kind == JournalKinds.StepDone;
        var slash = line.Step.IndexOf('/');
        var (node, step) = (line.Step[..slash], line.Step[(slash + 1)..]);
        switch (step)
        {
            case "pre-stage":
            case "enable-upgrade-mode" when !done:
                Assert.False(cluster.UpgradeModeEnabled, $"upgrade mode is on at {line}, before the POST");
                Assert.All(cluster.Nodes, n => Assert.Equal(from, n.Version));
                return;
            case "enable-upgrade-mode":
            case "finalize" when !done:
                Assert.True(cluster.UpgradeModeEnabled, $"upgrade mode is off at {line}");
                return;
            case "finalize":
            case "wait-stable":
                Assert.False(cluster.UpgradeModeEnabled, $"upgrade mode is still on at {line}, after finalize");
                return;
        }

        var at = Array.IndexOf(NodeSteps, step);
        Assert.True(at >= 0, $"no expectation for {line}");
        at += done ? 1 : 0;   // 0: before take-out ... 7: put back
        var profile = ClusterProfileReader.Read(lab.Profile(), lab.ProfilePath);
        using var rotation = new LoadBalancerRotation(profile);
        var struck = profile.FindNode(node)!;
        var inRotation = at is 0 or 7;
        Assert.Equal(inRotation ? RotationState.InRotation : RotationState.OutOfRotation, await rotation.GetStateAsync(struck, CancellationToken.None));
        var api = cluster.Nodes.Where(n => n.Name == node).OrderBy(n => n.State == NodeState.OFFLINE).FirstOrDefault();
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(new LocalShell()));
        var state = await host.GetStateAsync(struck, CancellationToken.None);
        output?.WriteLine($"    {node}: {(inRotation ? "in" : "out of")} rotation, install dir {state.InstalledVersion}, process {(state.ProcessRunning ? "running" : "stopped")}, API {api?.State} {api?.Version}");
        Assert.Equal(at <= 3 ? from : to, state.InstalledVersion);            // the new install dir is in use from install's done
        Assert.Equal(at is <= 1 or >= 5, state.ProcessRunning);              // stopped from stop's done to start's done
        if (at <= 1)
        {
            Assert.Equal(NodeState.ACTIVE, api?.State);
            Assert.Equal(from, api?.Version);
        }
        else if (at is 3 or 4)
        {
            Assert.True(api is null || api.State == NodeState.OFFLINE, $"{node} is {api?.State} at {line}, not OFFLINE");
        }
        else if (at >= 6)
        {
            Assert.Equal(NodeState.ACTIVE, api?.State);
            Assert.Equal(to, api?.Version);
        }
    }
}
