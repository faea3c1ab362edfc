using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Preflight;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// A refusal after a killed run tells the truth: not "nothing was changed" while a node sits stopped and drained, but
/// that node, its state and the one command that goes on; and no capacity error that the resume would not raise.
/// </summary>
public sealed class TruthfulRefusalTests : IDisposable
{
    private readonly UpgradeFixture _f = new(To, "node-1", "node-2");

    private async Task KilledAt(string step)
    {
        var process = new FakeProcess();
        var killing = new KillingJournal(_f.Journal, process, int.MaxValue) { WriteBeforeKill = true, KillAtLine = e => e.Kind == JournalKinds.StepDone && e.Step == step };
        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner(killing, process).RunAsync(_f.Profile, Options(43001), CancellationToken.None));
        Assert.True(killing.Fired);
    }

    [Fact]
    public async Task A_run_without_Resume_after_a_kill_names_the_node_left_out_and_the_resume_command_only()
    {
        await KilledAt("node-1/stop");

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(2), CancellationToken.None));

        Assert.Equal("PreflightResumeRequired", ex.ErrorId);
        Assert.DoesNotContain("nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("node node-1 is", ex.Message, StringComparison.Ordinal);
        Assert.Contains("OutOfRotation at the load balancer", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"Invoke-BbRollingUpgrade -ProfilePath {_f.Profile.Source} -Resume continues it", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("-ProfilePath <profile>", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_as_Test_BbClusterProfile_runs_it_reports_only_that_a_resume_is_needed_and_the_resume_then_passes()
    {
        await KilledAt("node-1/stop");

        var inspect = await new PreflightCheck(FakePorts.Create(_f.World, _f.Journal), _f.Host).RunAsync(_f.Profile, false, CancellationToken.None);

        // Before: PreflightCapacity ("Only 1 node is ACTIVE") and PreflightNodeNotActive too, which -Resume does not raise.
        var error = Assert.Single(inspect.Errors);
        Assert.Equal("PreflightResumeRequired", error.Check);
        var resume = await new PreflightCheck(FakePorts.Create(_f.World, _f.Journal), _f.Host).RunAsync(_f.Profile, true, CancellationToken.None);
        Assert.True(resume.Passed, string.Join("\n", resume.Errors));
    }

    [Fact]
    public async Task A_lost_journal_refusal_names_the_node_and_Adopt()
    {
        await KilledAt("node-1/stop");
        File.Delete(_f.Journal.JournalFile("prod"));
        File.Delete(_f.Journal.LockFile("prod"));

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None));

        Assert.Equal("PreflightUpgradeNotOurs", ex.ErrorId);
        Assert.DoesNotContain("nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("node node-1 is", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"Invoke-BbRollingUpgrade -ProfilePath {_f.Profile.Source} -Adopt continues it", ex.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _f.Dispose();
}
