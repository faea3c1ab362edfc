using System.Collections;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// The halt error says what really happened and what to do, in the terms of the rolling upgrade (the profile), for the
/// faults whose first symptom misleads: a node that never stops, and upgrade mode cancelled by someone else.
/// </summary>
public sealed class HaltMessageTests : IDisposable
{
    private readonly UpgradeFixture _f = new(); // loads unknown: node-1 goes first

    [Fact]
    public async Task A_node_that_hangs_on_stop_is_left_out_of_rotation_on_purpose_and_the_halt_says_how_to_go_on()
    {
        ((Hashtable)_f.Data["Timeouts"]!)["StopSeconds"] = 3;
        var hung = _f.World["node-1"];
        hung.HangOnStop = true;

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        Assert.Equal("UpgradeNodeStopTimeout", ex.ErrorId);
        Assert.Equal(BbErrorCategory.OperationTimeout, ex.Category);
        Assert.StartsWith("Node node-1 did not stop within 3 s (Timeouts.StopSeconds): Bitbucket is still running (pid 4100, the API shows it TERMINATING on 8.19.3).", ex.Message);
        Assert.Contains("It was left OUT of rotation on purpose: a node that is shutting down cannot serve users", ex.Message);
        Assert.Contains("Next step: end the Bitbucket process on node-1 by hand (pid 4100 on 10.0.0.1), or raise Timeouts.StopSeconds in the profile if it only needs longer to stop, then run Invoke-BbRollingUpgrade -ProfilePath", ex.Message);
        Assert.Contains("-Resume", ex.Message);
        // Stop-BbNode's vocabulary and an empty list of what was done do not belong here.
        Assert.DoesNotContain("-Timeout)", ex.Message);
        Assert.DoesNotContain("-Force", ex.Message);
        Assert.DoesNotContain("[]", ex.Message);
        Assert.DoesNotContain("check it by hand", ex.Message);

        // Reality: still shutting down, out of rotation, asked to stop once; the others serve; nothing else was touched.
        Assert.True(hung.Running);
        Assert.Equal(RotationState.OutOfRotation, hung.Rotation);
        Assert.Equal(1, _f.World.Count("node-1:stop"));
        Assert.All(new[] { "node-2", "node-3" }, n => Assert.Equal(RotationState.InRotation, _f.World[n].Rotation));
        var node = ex.Report.Nodes.Single(n => n.Name == "node-1");
        Assert.Equal(NodeOutcome.Failed, node.Outcome);
        Assert.Equal("UpgradeNodeStopTimeout", ex.Report.ErrorId);
        Assert.StartsWith("end the Bitbucket process on node-1", ex.Report.NextStep);
        var journal = await _f.ReadJournal();
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackFailed && e.Node == "node-1" && e.Message!.Contains("on purpose"));
        Assert.Equal(JournalKinds.RunHalted, journal[^1].Kind);

        // The way forward the message names: end the process, then -Resume finishes the upgrade.
        hung.HangOnStop = false;
        hung.Terminating = false;
        hung.Running = false;
        hung.StoppedAt = _f.World.Clock.Now;
        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None);
        Assert.True(resumed.Report!.Succeeded, resumed.Report.Summary);
        Assert.True(_f.World.AllOn(To));
    }

    [Fact]
    public async Task Upgrade_mode_cancelled_behind_our_back_is_named_and_a_fresh_run_is_the_next_step()
    {
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && e.Node == "node-1") _f.World.CancelUpgradeMode();
            return Task.CompletedTask;
        };

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Equal("UpgradeModeCancelled", ex.ErrorId);
        Assert.Equal(BbErrorCategory.InvalidOperation, ex.Category);
        Assert.StartsWith("Upgrade mode was cancelled by someone else during the run: the cluster is STABLE with upgrade mode off, so node node-1 on 8.19.4 could not join it", ex.Message);
        Assert.Contains("Restored: node node-1 runs 8.19.3 again and is back in rotation", ex.Message);
        Assert.Contains("Next step: find out who cancelled upgrade mode and why; when the cluster may be upgraded, run Invoke-BbRollingUpgrade -ProfilePath", ex.Message);
        Assert.Contains("a fresh run enables upgrade mode again", ex.Message);
        Assert.DoesNotContain("-Resume", ex.Message);
        Assert.Equal(NodeOutcome.RolledBack, ex.Report.Nodes.Single(n => n.Name == "node-1").Outcome);
        Assert.All(_f.World.Nodes, n =>
        {
            Assert.Equal(From, n.InstalledVersion);
            Assert.Equal(RotationState.InRotation, n.Rotation);
            Assert.Equal(NodeState.ACTIVE, _f.World.NodeStateOf(n));
        });

        // The advice holds: a plain run (no -Resume) upgrades the whole cluster.
        var again = await _f.Runner().RunAsync(_f.Profile, Options(2), CancellationToken.None);
        Assert.True(again.Report!.Succeeded, again.Report.Summary);
        Assert.False(again.Report.Resumed);
        Assert.True(_f.World.AllOn(To));
    }

    [Fact]
    public async Task Invoke_BbNodeUpgrade_of_a_node_that_hangs_on_stop_names_the_same_way_forward()
    {
        _f.World.StartUpgradeMode();
        _f.World["node-2"].HangOnStop = true;

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().UpgradeNodeAsync(_f.Profile, "node-2", Options(1), CancellationToken.None));

        Assert.Equal("UpgradeNodeStopTimeout", ex.ErrorId);
        Assert.Contains("Bitbucket is still running (pid 4100", ex.Message);
        Assert.Contains("left OUT of rotation on purpose", ex.Message);
        Assert.Contains("Next step: end the Bitbucket process on node-2 by hand", ex.Message);
        Assert.Contains("Invoke-BbNodeUpgrade -ProfilePath", ex.Message);
        Assert.DoesNotContain("Restored:", ex.Message);
        Assert.Equal(RotationState.OutOfRotation, _f.World["node-2"].Rotation);
    }

    public void Dispose() => _f.Dispose();
}
