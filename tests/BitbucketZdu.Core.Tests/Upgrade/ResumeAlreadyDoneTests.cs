using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// A run killed after its approve landed has done its work (or Bitbucket is finishing it): the resume says so and
/// succeeds, so a runbook does not report a failed job for a finished upgrade. Before: PreflightAlreadyOnTarget
/// (STABLE, run-completed written or not) and PreflightClusterState (RUNNING_UPGRADE_TASKS).
/// </summary>
public sealed class ResumeAlreadyDoneTests : IDisposable
{
    private const int KilledPid = 41001;
    private const int ResumedPid = 41002;
    private readonly UpgradeFixture _f = new(To, "node-1", "node-2");

    private async Task KillAt(Func<JournalEntry, bool> line)
    {
        var process = new FakeProcess();
        var killing = new KillingJournal(_f.Journal, process, int.MaxValue) { WriteBeforeKill = true, KillAtLine = line };
        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner(killing, process).RunAsync(_f.Profile, Options(KilledPid), CancellationToken.None));
        Assert.True(killing.Fired);
        _f.Host.Messages.Clear();
    }

    private async Task<UpgradeReport> ResumeSucceeds()
    {
        var before = _f.World.Operations.Count;
        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(ResumedPid, resume: true), CancellationToken.None);
        var report = resumed.Report!;
        Assert.True(report.Succeeded, report.Summary);
        Assert.True(report.Resumed);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(JournalKinds.RunCompleted, (await _f.ReadJournal())[^1].Kind);
        // Nothing was done again: no start, stop, install or approve.
        Assert.Equal(before, _f.World.Operations.Count);
        Assert.All(report.Nodes, n => Assert.Equal(NodeOutcome.AlreadyUpgraded, n.Outcome));
        return report;
    }

    [Fact]
    public async Task Killed_after_run_completed_was_written_a_resume_succeeds_and_says_the_work_was_done()
    {
        await KillAt(e => e.Kind == JournalKinds.RunCompleted);

        var report = await ResumeSucceeds();

        Assert.True(report.AlreadyDone);
        Assert.Contains("already done", report.Summary, StringComparison.Ordinal);
        Assert.Contains(_f.Host.Messages, m => m.StartsWith("INFO: ", StringComparison.Ordinal) && m.Contains("already done the work", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Killed_in_the_wait_for_STABLE_a_resume_records_run_completed_and_succeeds()
    {
        await KillAt(e => e.Kind == JournalKinds.StepBegin && e.Step == PlanStepKeys.WaitStable);
        Assert.True(_f.World.AllOn(To));

        var report = await ResumeSucceeds();

        Assert.True(report.AlreadyDone);
        Assert.Equal("STABLE", report.FinalState);
    }

    [Fact]
    public async Task Killed_while_the_finalization_tasks_run_a_resume_waits_for_STABLE()
    {
        _f.World.FinalizationTasksDuration = TimeSpan.FromMinutes(2);
        _f.Data["Timeouts"] = new System.Collections.Hashtable { ["StartSeconds"] = 60, ["HealthySeconds"] = 30, ["StableSeconds"] = 300 };
        await KillAt(e => e.Kind == JournalKinds.StepDone && e.Step == PlanStepKeys.Finalize);
        Assert.Equal(ClusterState.RUNNING_UPGRADE_TASKS, _f.World.Cluster().State);
        Assert.False(_f.World.Cluster().UpgradeModeEnabled);

        var report = await ResumeSucceeds();

        Assert.Equal("STABLE", report.FinalState);
        Assert.Equal(1, _f.World.Count("cluster:approve"));
    }

    public void Dispose() => _f.Dispose();
}
