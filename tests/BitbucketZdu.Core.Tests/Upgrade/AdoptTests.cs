using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// The journal lost (an admin host that died) on a half-upgraded cluster: without -Adopt the run refuses and names
/// -Adopt; with it the run takes over from the real state, and refuses only where that state is ambiguous.
/// </summary>
public sealed class AdoptTests
{
    private const int KilledPid = 42001;

    /// <summary>Runs until <paramref name="line"/> is journaled, kills the run there, then loses the journal and its lock.</summary>
    private static async Task KilledThenJournalLost(UpgradeFixture f, Func<JournalEntry, bool> line)
    {
        var process = new FakeProcess();
        var killing = new KillingJournal(f.Journal, process, int.MaxValue) { WriteBeforeKill = true, KillAtLine = line };
        await Assert.ThrowsAnyAsync<Exception>(() => f.Runner(killing, process).RunAsync(f.Profile, Options(KilledPid), CancellationToken.None));
        Assert.True(killing.Fired);
        File.Delete(f.Journal.JournalFile("prod"));
        File.Delete(f.Journal.LockFile("prod"));
        f.Host.Messages.Clear();
    }

    private static RollingUpgradeOptions AdoptOptions(int pid)
    {
        var o = Options(pid, resume: true);
        o.Adopt = true;
        return o;
    }

    private static void EachNodeUpgradedOnce(UpgradeFixture f)
    {
        Assert.True(f.World.AllOn(To), "every node on the target, in rotation, cluster STABLE");
        foreach (var node in f.World.Nodes.Select(n => n.Name))
        {
            Assert.Equal(1, f.World.Count(node + ":stop"));
            Assert.Equal(1, f.World.Count(node + ":install:" + To));
        }
        Assert.Equal(1, f.World.Count("cluster:start"));
        Assert.Equal(1, f.World.Count("cluster:approve"));
        Assert.DoesNotContain(f.World.Operations, o => o.Contains(":rollback:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lost_journal_on_a_MIXED_cluster_is_refused_naming_Adopt_and_adopted_with_it()
    {
        using var f = new UpgradeFixture();
        await KilledThenJournalLost(f, e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/put-back");
        Assert.Equal(BitbucketZdu.Core.Api.ClusterState.MIXED, f.World.Cluster().State);

        var refused = await Assert.ThrowsAsync<BbException>(() => f.Runner().RunAsync(f.Profile, Options(2, resume: true), CancellationToken.None));
        Assert.Equal("PreflightUpgradeNotOurs", refused.ErrorId);
        Assert.Contains("-Adopt", refused.Message, StringComparison.Ordinal);

        var result = await f.Runner().RunAsync(f.Profile, AdoptOptions(3), CancellationToken.None);

        Assert.True(result.Report!.Succeeded, result.Report.Summary);
        Assert.True(result.Report.Adopted);
        Assert.Equal(From, result.Report.FromVersion);
        EachNodeUpgradedOnce(f);
        var found = Assert.Single(f.Host.Messages, m => m.StartsWith("INFO: Adopting", StringComparison.Ordinal));
        Assert.Contains("node-1: ACTIVE on 8.19.4, InRotation: done", found, StringComparison.Ordinal);
        Assert.Contains("node-2: ACTIVE on 8.19.3, InRotation: to upgrade", found, StringComparison.Ordinal);
        // The takeover starts a journal run of its own, so a later -Resume finds it.
        var journal = await f.ReadJournal();
        Assert.Equal(JournalKinds.RunStarted, journal[0].Kind);
        Assert.Equal(JournalKinds.RunCompleted, journal[^1].Kind);
    }

    [Fact]
    public async Task A_lost_journal_with_a_node_left_stopped_in_a_two_node_cluster_finishes_that_node_first()
    {
        using var f = new UpgradeFixture(To, "node-1", "node-2");
        await KilledThenJournalLost(f, e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/stop");
        Assert.False(f.World["node-1"].Running);

        var result = await f.Runner().RunAsync(f.Profile, AdoptOptions(3), CancellationToken.None);

        Assert.True(result.Report!.Succeeded, result.Report.Summary);
        Assert.Equal(new[] { "node-1", "node-2" }, result.Plan.NodeOrder);
        Assert.Contains(f.Host.Messages, m => m.StartsWith("INFO: Adopting", StringComparison.Ordinal) && m.Contains("Will: finish node node-1, then upgrade node-2", StringComparison.Ordinal));
        EachNodeUpgradedOnce(f);
        Assert.Equal(1, f.World.Count("node-1:take-out"));
    }

    [Fact]
    public async Task Two_nodes_out_is_ambiguous_and_refused_naming_both_and_changing_nothing()
    {
        using var f = new UpgradeFixture();
        await KilledThenJournalLost(f, e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/stop");
        f.World["node-3"].Rotation = RotationState.OutOfRotation;
        var ops = f.World.Operations.Count;

        var refused = await Assert.ThrowsAsync<BbException>(() => f.Runner().RunAsync(f.Profile, AdoptOptions(3), CancellationToken.None));

        Assert.Equal("PreflightAdoptAmbiguous", refused.ErrorId);
        Assert.Contains("node-1", refused.Message, StringComparison.Ordinal);
        Assert.Contains("node-3: ACTIVE on 8.19.3, OutOfRotation", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("nothing was changed", refused.Message, StringComparison.Ordinal);
        Assert.Equal(ops, f.World.Operations.Count);
        Assert.Empty(await f.ReadJournal());
    }

    [Fact]
    public async Task A_node_on_neither_version_is_refused_naming_it()
    {
        using var f = new UpgradeFixture();
        await KilledThenJournalLost(f, e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/put-back");
        f.World["node-2"].InstalledVersion = "8.19.5";

        var refused = await Assert.ThrowsAsync<BbException>(() => f.Runner().RunAsync(f.Profile, AdoptOptions(3), CancellationToken.None));

        Assert.Equal("PreflightAdoptUnknownVersion", refused.ErrorId);
        Assert.Contains("node-2 runs 8.19.5, neither the original 8.19.3 nor the target 8.19.4", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Adopt_WhatIf_shows_what_it_found_and_the_plan_with_the_done_steps_and_changes_nothing()
    {
        using var f = new UpgradeFixture();
        await KilledThenJournalLost(f, e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/put-back");
        var ops = f.World.Operations.Count;
        f.Host.Allow = false;

        var result = await f.Runner().RunAsync(f.Profile, AdoptOptions(3), CancellationToken.None);

        Assert.True(result.PlanOnly);
        Assert.Contains(f.Host.Messages, m => m.StartsWith("INFO: Adopting", StringComparison.Ordinal));
        Assert.All(result.Plan.Steps.Where(s => s.Node == "node-1"), s => Assert.NotNull(s.Done));
        Assert.All(result.Plan.Steps.Where(s => s.Node == "node-2" && !s.Key.EndsWith("/pre-stage", StringComparison.Ordinal)), s => Assert.Null(s.Done));
        Assert.Contains(f.Host.Asked, a => a.target == "node-1" && a.action.StartsWith("Already done", StringComparison.Ordinal));
        Assert.Equal(ops, f.World.Operations.Count);
        Assert.Empty(await f.ReadJournal());
    }
}
