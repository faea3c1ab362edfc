using System.Collections;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// Issue 12 problem 5, the orchestrator's side (Complete-BbRollingUpgrade's is in the Cmdlets tests): after approve the
/// finalization tasks run (RUNNING_UPGRADE_TASKS) and end STABLE, or fail (UPGRADE_TASKS_FAILED, which no wait ends).
/// On the fake cluster's virtual clock.
/// </summary>
public sealed class FinalizationTasksRunnerTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    public FinalizationTasksRunnerTests() =>
        _f.Data["Timeouts"] = new Hashtable { ["StartSeconds"] = 60, ["HealthySeconds"] = 30, ["StableSeconds"] = 600 };

    [Fact]
    public async Task The_run_waits_through_RUNNING_UPGRADE_TASKS_and_completes_when_the_cluster_is_STABLE()
    {
        _f.World.FinalizationTasksDuration = TimeSpan.FromMinutes(2);

        var result = await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None);

        Assert.True(result.Report!.Succeeded, result.Report.Summary);
        Assert.Equal("STABLE", result.Report.FinalState);
        Assert.Equal(ClusterState.STABLE, _f.World.Cluster().State);
        var journal = await _f.ReadJournal();
        var approved = journal.Single(e => e.Kind == JournalKinds.StepDone && e.Step == PlanStepKeys.Finalize).Time;
        var done = journal.Single(e => e.Kind == JournalKinds.RunCompleted).Time;
        Assert.True(done - approved >= TimeSpan.FromMinutes(2), $"the run completed {(done - approved).TotalSeconds:0} s (virtual) after approve, before the 2 min of tasks ended");
    }

    [Fact]
    public async Task Failed_finalization_tasks_halt_at_once_with_UpgradeTasksFailed_and_the_next_step()
    {
        // Before: the run polled for STABLE until StableSeconds (10 minutes here) and then timed out.
        _f.World.FinalizationTasksDuration = TimeSpan.FromSeconds(20);
        _f.World.FinalizationTasksFail = true;

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        Assert.Equal("UpgradeTasksFailed", ex.ErrorId);
        Assert.Contains("UPGRADE_TASKS_FAILED", ex.Message);
        Assert.Contains("Resume-BbUpgradeTask", ex.Message);
        Assert.True(_f.World.AllOn(To));
        var journal = await _f.ReadJournal();
        var approved = journal.Single(e => e.Kind == JournalKinds.StepDone && e.Step == PlanStepKeys.Finalize).Time;
        var halted = journal.Last().Time;
        Assert.True(halted - approved < TimeSpan.FromMinutes(2), $"halted {(halted - approved).TotalSeconds:0} s (virtual) after approve; StableSeconds is 600");
    }

    public void Dispose() => _f.Dispose();
}
