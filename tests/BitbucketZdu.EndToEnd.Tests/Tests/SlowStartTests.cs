using System.Collections;
using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>The new version takes longer to start than Timeouts.StartSeconds: rolled back, back in rotation, halted with the way forward.</summary>
public sealed class SlowStartTests
{
    private readonly ITestOutputHelper _output;

    public SlowStartTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Node_slow_to_start_past_the_timeout_is_rolled_back_and_resume_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var profile = lab.Profile();
        ((Hashtable)profile["Timeouts"]!)["StartSeconds"] = 4;
        var struck = new StrongBox<string?>();
        Task? clearOnceStarting = null;
        // Out of rotation, before its stop: its next start (the new version) stays STARTING 10 s longer than the 4 s the
        // profile allows. The simulator reads startDelayMs when a start begins, so the fault is cleared as soon as the new
        // version is STARTING: only that one start is slow (the rollback's start of the old version is a normal one).
        var hook = E2eLab.Once("NodeOutOfRotation", node =>
        {
            lab.Cluster.SetFault(node, """{"startDelayMs": 10000}""");
            clearOnceStarting = Task.Run(async () =>
            {
                using var http = lab.Http(TimeSpan.FromSeconds(2));
                await Eventually.UntilAsync(async () =>
                {
                    var body = await http.GetStringAsync(new Uri(lab.Node(node).Url, "bbsim/node"));
                    return body.Contains("\"STARTING\"") && body.Contains("\"" + lab.Options.To + "\"");
                }, TimeSpan.FromSeconds(30), $"{node} STARTING on {lab.Options.To}", TimeSpan.FromMilliseconds(50));
                lab.Cluster.ClearFault(node);
            });
        }, struck);

        var run = await lab.InvokeRollingUpgradeAsync(profile: profile, hook: hook);
        await clearOnceStarting!;
        var slow = struck.Value!;
        lab.Print($"{slow} slow to start", run);

        var journal = await HaltedRuns.AssertHaltedAndServingAsync(lab, run, slow);
        _output.WriteLine("journal: " + HaltedRuns.Tail(journal));
        Assert.Equal("UpgradeNodeFailed", run.ErrorId);
        // What happened (the start deadline and what was seen) and what to do about a node that is merely slow.
        Assert.Contains("within 4 s", run.ErrorMessage);
        Assert.Contains("STARTING", run.ErrorMessage);
        Assert.Contains("Timeouts.StartSeconds", run.ErrorMessage);
        Assert.Equal(NodeOutcome.RolledBack, run.Report!.Nodes.Single(n => n.Name == slow).Outcome);
        Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Node == slow);
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackDone && e.Node == slow);
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("node slow to start past Timeouts.StartSeconds", $"{slow} rolled back to 8.19.3 and back in rotation; run halted", run.ErrorId,
            $"next step: {run.Report.NextStep}");

        await HaltedRuns.ResumeToCompletionAsync(lab, "resume after the slow start", profile);
        lab.Record("node slow to start, then -Resume", "upgraded 3/3, STABLE", null);
    }
}
