using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// StepStarting / StepDone: a hook at every journaled step, called right after its step-begin / step-done line is in the
/// journal (the end-to-end kill tests block there to SIGKILL the run at an exact journal line).
/// </summary>
public sealed class StepHookTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task Every_step_gets_a_hook_after_its_begin_and_done_lines_are_journaled()
    {
        var seen = new List<(UpgradePhase phase, string step, string lastLine)>();
        UpgradeHook hook = async (e, ct) =>
        {
            if (e.Phase is not (UpgradePhase.StepStarting or UpgradePhase.StepDone)) return;
            var journal = await _f.ReadJournal();
            var last = journal.Last(j => j.Step == e.Step);
            lock (seen) seen.Add((e.Phase, e.Step!, last.Kind));
            Assert.Equal(To, e.TargetVersion);
            Assert.Equal(e.Step!.StartsWith("cluster/", StringComparison.Ordinal) ? null : e.Step.Split('/')[0], e.Node);
        };

        var result = await _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None);

        Assert.True(result.Report!.Succeeded);
        var steps = result.Plan.Steps.Select(s => s.Key).ToList();
        Assert.Equal(steps.OrderBy(s => s), seen.Where(s => s.phase == UpgradePhase.StepStarting).Select(s => s.step).OrderBy(s => s));
        Assert.Equal(steps.OrderBy(s => s), seen.Where(s => s.phase == UpgradePhase.StepDone).Select(s => s.step).OrderBy(s => s));
        Assert.All(seen, s => Assert.Equal(s.phase == UpgradePhase.StepStarting ? JournalKinds.StepBegin : JournalKinds.StepDone, s.lastLine));
        // Node steps in the order the journal records them, begin before done.
        var node = result.Report.Nodes[0].Name;
        var expected = new[] { StepKind.TakeOut, StepKind.Stop, StepKind.WaitOffline, StepKind.Install, StepKind.Start, StepKind.HealthGate, StepKind.PutBack }
            .SelectMany(k => new[] { (UpgradePhase.StepStarting, node + "/" + PlanStep.KeyOf(k)), (UpgradePhase.StepDone, node + "/" + PlanStep.KeyOf(k)) });
        Assert.Equal(expected, seen.Where(s => s.step.StartsWith(node + "/", StringComparison.Ordinal) && !s.step.EndsWith("/pre-stage", StringComparison.Ordinal))
            .Select(s => (s.phase, s.step)));
    }

    [Fact]
    public async Task A_throw_at_StepStarting_fails_the_step_before_its_work_and_restores_the_node()
    {
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.StepStarting && e.Step == "node-1/stop") throw new InvalidOperationException("change freeze: no stops now");
            return Task.CompletedTask;
        };

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Equal("UpgradeNodeFailed", ex.ErrorId);
        Assert.Contains("change freeze", ex.Message);
        Assert.Equal(0, _f.World.Count("node-1:stop"));
        Assert.Equal(BitbucketZdu.Core.Upgrade.Ports.RotationState.InRotation, _f.World["node-1"].Rotation);
        var journal = await _f.ReadJournal();
        Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Step == "node-1/stop");
    }

    public void Dispose() => _f.Dispose();
}
