using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// The process is killed at every journal write (before the line lands, and right after it), then a fresh runner
/// resumes: the upgrade completes and no destructive step runs twice.
/// </summary>
public sealed class KillAndResumeTests
{
    private const int KilledPid = 40001;
    private const int ResumedPid = 40002;

    private static readonly string[] TwoNodes = { "node-1", "node-2" };

    private static async Task<int> AppendsOfACleanRun(string[] names)
    {
        using var f = new UpgradeFixture(To, names);
        var process = new FakeProcess();
        var journal = new KillingJournal(f.Journal, process, int.MaxValue);
        var result = await f.Runner(journal, process).RunAsync(f.Profile, Options(KilledPid), CancellationToken.None);
        Assert.True(result.Report!.Succeeded);
        return journal.Appends;
    }

    public static IEnumerable<object[]> KillPoints()
    {
        var n = AppendsOfACleanRun(Array.Empty<string>()).GetAwaiter().GetResult();
        Assert.InRange(n, 50, 80);
        for (var k = 1; k <= n; k++)
        {
            yield return new object[] { k, false };
            yield return new object[] { k, true };
        }
    }

    /// <summary>
    /// Two nodes: while one is out the other is the only ACTIVE node, so a capacity rule applied to the node already out
    /// refused every resume of a run killed mid-node ("Only 1 node is ACTIVE"), forever.
    /// </summary>
    public static IEnumerable<object[]> TwoNodeKillPoints()
    {
        var n = AppendsOfACleanRun(TwoNodes).GetAwaiter().GetResult();
        Assert.InRange(n, 30, 60);
        for (var k = 1; k <= n; k++)
        {
            yield return new object[] { k, false };
            yield return new object[] { k, true };
        }
    }

    [Theory]
    [MemberData(nameof(TwoNodeKillPoints))]
    public Task Two_node_cluster_killed_at_a_journal_write_then_resumed_completes(int killAt, bool lineWritten) =>
        KilledThenResumed(TwoNodes, killAt, lineWritten);

    [Theory]
    [MemberData(nameof(KillPoints))]
    public Task Killed_at_a_journal_write_then_resumed_completes_without_repeating_a_destructive_step(int killAt, bool lineWritten) =>
        KilledThenResumed(Array.Empty<string>(), killAt, lineWritten);

    private static async Task KilledThenResumed(string[] names, int killAt, bool lineWritten)
    {
        using var f = new UpgradeFixture(To, names);
        f.Journal.FlushToDisk = false; // the kill is simulated in-process: what is under test is what was appended, not fsync
        f.World["node-2"].TasksTotal = 0;
        var process = new FakeProcess();
        var killing = new KillingJournal(f.Journal, process, killAt) { WriteBeforeKill = lineWritten };

        await Assert.ThrowsAnyAsync<Exception>(() => f.Runner(killing, process).RunAsync(f.Profile, Options(KilledPid), CancellationToken.None));
        Assert.True(killing.Fired, $"the kill at write {killAt} happened");
        Assert.True(File.Exists(f.Journal.LockFile("prod")), "a killed run leaves its lock behind");

        // Killed after the final line too: the work is done and -Resume says so and succeeds (it used to refuse with
        // PreflightAlreadyOnTarget, a failed job for a finished upgrade).
        var alreadyDone = JournalRun.Last(await f.ReadJournal()) is { Completed: true };

        var resumed = await f.Runner().RunAsync(f.Profile, Options(ResumedPid, resume: true), CancellationToken.None);

        Assert.True(resumed.Report!.Succeeded, resumed.Report.Summary);
        if (alreadyDone) Assert.True(resumed.Report.AlreadyDone, resumed.Report.Summary);
        Assert.True(f.World.AllOn(To), "every node on the target, in rotation, cluster STABLE");
        Assert.Contains(f.Host.Warnings, w => w.Contains("Took over the lock", StringComparison.Ordinal));
        foreach (var node in f.World.Nodes.Select(n => n.Name))
        {
            Assert.Equal(1, f.World.Count(node + ":take-out"));
            Assert.Equal(1, f.World.Count(node + ":stop"));
            Assert.Equal(1, f.World.Count(node + ":install:" + To));
            Assert.Equal(1, f.World.Count(node + ":start:" + To));
            Assert.Equal(1, f.World.Count(node + ":put-back"));
            Assert.Equal(1, f.World.Count(node + ":pre-stage"));
        }
        Assert.Equal(1, f.World.Count("cluster:start"));
        Assert.Equal(1, f.World.Count("cluster:approve"));
        Assert.DoesNotContain(f.World.Operations, o => o.Contains(":rollback:", StringComparison.Ordinal));
        Assert.False(File.Exists(f.Journal.LockFile("prod")));
        Assert.Equal(JournalKinds.RunCompleted, (await f.ReadJournal())[^1].Kind);
    }

    /// <summary>
    /// Killed after the member went to maintenance but while its requests were still running (the load balancer's
    /// wait for in-flight work): out of rotation with the process up. The resume waits for that work before the stop;
    /// it used to count the take-out as done and stop the node under its requests.
    /// </summary>
    [Fact]
    public async Task Killed_during_the_wait_for_work_in_flight_the_resume_waits_for_it_before_stopping()
    {
        using var f = new UpgradeFixture(To, TwoNodes);
        f.Journal.FlushToDisk = false;
        var process = new FakeProcess();
        var killing = new KillingJournal(f.Journal, process, int.MaxValue)
        {
            WriteBeforeKill = true,
            KillAtLine = e => e.Kind == JournalKinds.StepBegin && e.Step == "node-1/take-out",
        };
        await Assert.ThrowsAnyAsync<Exception>(() => f.Runner(killing, process).RunAsync(f.Profile, Options(KilledPid), CancellationToken.None));
        Assert.True(killing.Fired);
        // What the killed process left: the member in maintenance, its requests still running, Bitbucket still up.
        var node1 = f.World["node-1"];
        node1.Rotation = RotationState.OutOfRotation;
        node1.InFlight = true;

        var resumed = await f.Runner().RunAsync(f.Profile, Options(ResumedPid, resume: true), CancellationToken.None);

        Assert.True(resumed.Report!.Succeeded, resumed.Report.Summary);
        var ops = f.World.Operations.ToList();
        Assert.DoesNotContain("node-1:stop-cut-requests-in-flight", ops);
        Assert.True(ops.IndexOf("node-1:take-out-wait") is var wait && wait >= 0 && wait < ops.IndexOf("node-1:stop"),
            string.Join(", ", ops));
        Assert.Equal(1, f.World.Count("node-1:stop"));
    }
}
