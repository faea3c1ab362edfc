using System.Collections;
using System.Management.Automation;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>What every halted fault case asserts, and the -Resume that must complete it.</summary>
internal static class HaltedRuns
{
    /// <summary>
    /// The run halted (not succeeded) with an ErrorId and a message that names <paramref name="node"/> (when given) and
    /// -Resume; every node runs <paramref name="version"/> and is in rotation (the balancer's view and the users'); the
    /// journal's last run ends in run-halted; no canary anywhere in the output or the journal. Returns the run's journal lines.
    /// </summary>
    public static async Task<IReadOnlyList<JournalEntry>> AssertHaltedAndServingAsync(E2eLab lab, UpgradeRun run, string? node, string version = "8.19.3")
    {
        Assert.False(run.Succeeded, "the run should have halted");
        Assert.NotNull(run.ErrorId);
        if (node is not null) Assert.Contains(node, run.ErrorMessage);
        Assert.Matches("(?i)-Resume", run.ErrorMessage);
        var cluster = await lab.ClusterStateAsync();
        Assert.All(cluster.Nodes, n => Assert.Equal(version, n.Version));
        await lab.AssertAllInRotationAsync();
        var journal = JournalRun.Last(await lab.JournalAsync())!.Entries;
        Assert.Equal(JournalKinds.RunHalted, journal.Last().Kind);
        Canary.AssertAbsent(File.ReadAllText(lab.JournalFile), "journal");
        Canary.AssertAbsent(run.ErrorMessage, "error message");
        return journal;
    }

    /// <summary>-Resume completes: every node on the target, STABLE, in rotation; no user request failed over the whole case.</summary>
    /// <param name="afterRun">Runs once -Resume returned, before the checks (e.g. undo a fault the checks would trip on).</param>
    public static async Task<UpgradeRun> ResumeToCompletionAsync(E2eLab lab, string title, Hashtable? profile = null, PSCredential? credential = null,
        Action? afterRun = null)
    {
        var resumed = await lab.InvokeRollingUpgradeAsync("-Resume", profile, credential: credential);
        afterRun?.Invoke();
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print(title, resumed);
        Assert.True(resumed.Succeeded, resumed.ErrorMessage);
        await lab.AssertClusterOnAsync(lab.Options.To);
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        var journal = JournalRun.Last(await lab.JournalAsync())!.Entries;
        Assert.Contains(journal, e => e.Kind == JournalKinds.RunResumed);
        Assert.Equal(JournalKinds.RunCompleted, journal.Last().Kind);
        return resumed;
    }

    public static string Tail(IReadOnlyList<JournalEntry> journal, int lines = 8) =>
        string.Join(" | ", journal.TakeLast(lines).Select(e => $"{e.Kind} {e.Step} {e.Message}"));
}
