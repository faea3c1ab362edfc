using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// A run killed mid-node (an Azure Automation job unloaded, a crashed process) leaves that node out of rotation. In a
/// two-node cluster the other node then has "no other healthy member" right now; the resumed run puts the node that is
/// out back before it touches the other, so preflight warns instead of refusing the resume.
/// </summary>
public sealed class ResumeCapacityTests : IDisposable
{
    private readonly UpgradeFixture _f = new(To, "node-1", "node-2");

    [Fact]
    public async Task A_run_killed_with_a_node_out_of_rotation_is_resumed_in_a_two_node_cluster()
    {
        _f.World["node-1"].TasksTotal = 0;
        _f.World["node-2"].TasksTotal = 5;
        using var cts = new CancellationTokenSource();
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && e.Node == "node-2") cts.Cancel();
            return Task.CompletedTask;
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), cts.Token));
        // What a kill leaves (Ctrl+C put it back): node-2 out of rotation, its run unfinished, upgrade mode on.
        _f.World["node-2"].Rotation = RotationState.OutOfRotation;

        var preflight = await new PreflightCheck(FakePorts.Create(_f.World, _f.Journal), _f.Host).RunAsync(_f.Profile, true, CancellationToken.None);
        Assert.True(preflight.Passed, string.Join("\n", preflight.Findings));
        var capacity = Assert.Single(preflight.Findings, f => f.Check == "PreflightCapacity" && f.Target == "node-1");
        Assert.Equal(FindingSeverity.Warning, capacity.Severity);
        Assert.Contains("puts back", capacity.Message);

        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None);
        Assert.True(resumed.Report!.Succeeded);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-1:stop"));

        // Without -Resume the same shortage still refuses a fresh look (nothing is adopted): the run must be resumed.
        _f.World["node-2"].Rotation = RotationState.OutOfRotation;
        var fresh = await new PreflightCheck(FakePorts.Create(_f.World, _f.Journal), _f.Host).RunAsync(_f.Profile, false, CancellationToken.None);
        Assert.Contains(fresh.Errors, f => f.Check == "PreflightCapacity" && f.Target == "node-1");
    }

    public void Dispose() => _f.Dispose();
}
