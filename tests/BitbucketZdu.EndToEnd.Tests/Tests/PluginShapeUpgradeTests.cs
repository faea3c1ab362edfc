using BitbucketZdu.Core.Api;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// The module against the simulator's plugin-shaped behaviours (docs/simulator.md, "Fault injection"): finalization
/// tasks that run and fail, and a node that comes back on a new address with the same id.
/// </summary>
public sealed class PluginShapeUpgradeTests
{
    private readonly ITestOutputHelper _output;

    public PluginShapeUpgradeTests(ITestOutputHelper output) => _output = output;

    /// <summary>
    /// The finalization tasks run (RUNNING_UPGRADE_TASKS) and fail: Invoke-BbRollingUpgrade waits through them and halts
    /// with UpgradeTasksFailed naming Resume-BbUpgradeTask; Resume-BbUpgradeTask retries them and the cluster is STABLE.
    /// </summary>
    [Fact]
    public async Task Failed_finalization_tasks_halt_with_the_next_step_and_Resume_BbUpgradeTask_retries_them()
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Nodes = 2 });
        lab.Cluster.SetFault("cluster", """{"upgradeTasksFail": true, "upgradeTasksDurationMs": 1500}""");
        using var session = new ModuleSession();
        var run = await lab.InvokeRollingUpgradeAsync(session: session);
        lab.Print("upgrade whose finalization tasks fail", run);
        Assert.Equal("UpgradeTasksFailed", run.ErrorId);
        Assert.Contains("Resume-BbUpgradeTask", run.ErrorMessage);
        Assert.Equal(ClusterState.UPGRADE_TASKS_FAILED, (await lab.ClusterStateAsync()).State);

        var resume = await session.RunAsync("Connect-BbCluster -Uri $front -Credential $cred -TrustedCertificatePath $ca | Out-Null; Resume-BbUpgradeTask -Confirm:$false -TimeoutSec 60",
            new Dictionary<string, object?> { ["front"] = lab.Front.Frontend, ["cred"] = E2eLab.Credential, ["ca"] = lab.CaFile });
        Assert.True(resume.ErrorId is null, resume.ErrorId + ": " + resume.ErrorMessage);
        await lab.AssertClusterOnAsync(lab.Options.To);
        await lab.Load.StopAsync();
        Assert.True(lab.Load.Failed == 0, lab.Load.FailureSummary);
    }

    /// <summary>
    /// node-2 restarts (on the new version) on another address and keeps its id: the plugin lists a stale OFFLINE row with
    /// the same id as the live one. The engine follows the live row; every node is upgraded.
    /// </summary>
    [Fact]
    public async Task A_node_back_on_a_new_address_with_the_same_id_is_upgraded()
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { StableIds = true });
        // Read when node-2's process starts: its current process keeps 127.0.0.1, the upgraded one reports 127.0.0.2.
        lab.Cluster.SetFault("node-2", """{"ipAddress": "127.0.0.2"}""");
        var sawStale = false;
        var run = await lab.InvokeRollingUpgradeAsync(hook: (phase, node) =>
        {
            if (phase != "NodeUpgraded" || node != "node-2") return;
            // The client keeps the live row and says which stale row with the same id it ignored.
            var cluster = lab.ClusterStateAsync().GetAwaiter().GetResult();
            sawStale = cluster.Nodes.Single(n => n.Name == "node-2").StaleAddresses.Contains("127.0.0.1")
                && cluster.Warnings.Any(w => w.Contains("stale OFFLINE row", StringComparison.Ordinal));
        });
        lab.Print("upgrade with node-2 back on a new address, same id", run);
        await lab.Load.StopAsync();

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.True(sawStale, "node-2 upgraded should have shown a stale OFFLINE row with its id");
        await lab.AssertClusterOnAsync(lab.Options.To);
        Assert.Equal("127.0.0.2", (await lab.ClusterStateAsync()).Nodes.Single(n => n.Name == "node-2").IpAddress);
        Assert.True(lab.Load.Failed == 0, lab.Load.FailureSummary);
    }
}
