using BitbucketZdu.Core.Upgrade.Journal;
using Xunit;

namespace BitbucketZdu.Core.Tests.Upgrade.Journal;

public class RunStatusReaderTests
{
    private static JournalEntry Line(string kind, string? step = null, string? node = null) => new()
    {
        Time = DateTimeOffset.UnixEpoch, RunId = "r1", Kind = kind, Step = step, Node = node,
        FromVersion = "8.19.3", TargetVersion = "8.19.4", Host = "admin01", Pid = 4242,
    };

    [Fact]
    public void A_run_paused_by_StopAfter_reads_as_Paused_with_Resume_next_not_as_interrupted()
    {
        // -StopAfter ends its process on purpose after run-paused: that is not a crash, and nothing is out of rotation.
        var entries = new List<JournalEntry>
        {
            Line(JournalKinds.RunStarted),
            Line(JournalKinds.StepBegin, "node-1/take-out", "node-1"), Line(JournalKinds.StepDone, "node-1/take-out", "node-1"),
            Line(JournalKinds.StepBegin, "node-1/put-back", "node-1"), Line(JournalKinds.StepDone, "node-1/put-back", "node-1"),
            Line(JournalKinds.RunPaused),
        };

        var run = Assert.Single(RunStatusReader.Read("prod", entries, new[] { "node-1", "node-2" }, (_, _) => false, "./prod.psd1", null));

        Assert.Equal("Paused", run.State);
        Assert.Equal("Invoke-BbRollingUpgrade -ProfilePath ./prod.psd1 -Resume", run.NextCommand);
        Assert.Equal("", run.OutOfRotation);
    }

    [Fact]
    public void A_paused_run_that_was_resumed_and_is_still_going_reads_as_Running()
    {
        var entries = new List<JournalEntry>
        {
            Line(JournalKinds.RunStarted), Line(JournalKinds.RunPaused),
            Line(JournalKinds.RunResumed), Line(JournalKinds.StepBegin, "node-2/take-out", "node-2"),
        };

        var run = Assert.Single(RunStatusReader.Read("prod", entries, new[] { "node-1", "node-2" }, (_, _) => true, "./prod.psd1", null));

        Assert.Equal("Running", run.State);
    }
}
