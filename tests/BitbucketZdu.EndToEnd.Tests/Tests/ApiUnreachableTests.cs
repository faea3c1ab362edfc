using System.Collections;
using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// The cluster API as the admin's machine reaches it (the profile's BaseUrl) goes through a TCP relay the test cuts while
/// a node is out of rotation: connections are reset, as when a network path drops. Users reach the cluster through the
/// load balancer as before, and the nodes' own URLs (/status) stay direct.
/// </summary>
public sealed class ApiUnreachableTests
{
    private readonly ITestOutputHelper _output;

    public ApiUnreachableTests(ITestOutputHelper output) => _output = output;

    /// <summary>
    /// Cuts the relay at the first node out of rotation and restores it after <paramref name="outage"/> (the fault's
    /// length), but not before the engine has hit the cut at least once: a stop that waits for git clones in flight can
    /// outlast a short outage on a loaded machine, and an outage nobody saw proves nothing.
    /// </summary>
    private static Action<string, string?> CutFor(TcpRelay relay, TimeSpan outage, StrongBox<string?> struck, Action<Task> restored) =>
        E2eLab.Once("NodeOutOfRotation", _ =>
        {
            relay.Cut();
            restored(Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(outage);
                    await Eventually.UntilAsync(() => relay.Refused > 0, TimeSpan.FromSeconds(90), "an API request to hit the cut relay");
                }
                finally { relay.Restore(); }
            }));
        }, struck);

    [Fact]
    public async Task A_few_seconds_without_the_API_are_ridden_out_and_the_upgrade_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        await using var relay = new TcpRelay(lab.Front.Frontend);
        var profile = lab.Profile();
        profile["BaseUrl"] = relay.Url.ToString();
        var struck = new StrongBox<string?>();
        Task? restored = null;

        var run = await lab.InvokeRollingUpgradeAsync(profile: profile, hook: CutFor(relay, TimeSpan.FromSeconds(3), struck, t => restored = t));
        await restored!;
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print($"API unreachable for 3 s while {struck.Value} is out of rotation", run);
        _output.WriteLine($"connections reset during the outage: {relay.Refused}");

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.True(relay.Refused > 0, "the outage should have hit API requests");
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("API unreachable for 3 s while a node is out of rotation", $"ridden out ({relay.Refused} connections reset, retried); upgraded 3/3, STABLE", null);
    }

    [Fact]
    public async Task API_unreachable_past_the_deadline_halts_with_the_node_restored_and_resume_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        await using var relay = new TcpRelay(lab.Front.Frontend);
        var profile = lab.Profile();
        profile["BaseUrl"] = relay.Url.ToString();
        ((Hashtable)profile["Timeouts"]!)["OfflineSeconds"] = 5;
        var struck = new StrongBox<string?>();
        Task? restored = null;

        // 15 s: longer than the wait for OFFLINE (5 s) and than one GET's retries (~8 s), shorter than the restore's deadlines.
        var run = await lab.InvokeRollingUpgradeAsync(profile: profile, hook: CutFor(relay, TimeSpan.FromSeconds(15), struck, t => restored = t));
        await restored!;
        var node = struck.Value!;
        lab.Print($"API unreachable for 15 s while {node} is out of rotation", run);
        _output.WriteLine($"connections reset during the outage: {relay.Refused}");

        var journal = await HaltedRuns.AssertHaltedAndServingAsync(lab, run, node);
        _output.WriteLine("journal: " + HaltedRuns.Tail(journal));
        Assert.Equal("UpgradeNodeFailed", run.ErrorId);
        // What happened: the wait that timed out and why (the API could not be reached), the node restored, -Resume next.
        // The last poll's transport error: usually "Cannot reach <url>: ...", but a poll cut mid-read has surfaced the bare
        // socket error ("Transport endpoint is not connected") once on CI; either way the message says the API was not reached.
        Assert.Matches("Cannot reach " + System.Text.RegularExpressions.Regex.Escape(relay.Url.ToString()) + "|Transport endpoint is not connected|Connection reset", run.ErrorMessage);
        Assert.Contains("OFFLINE", run.ErrorMessage);
        Assert.Equal(NodeOutcome.RolledBack, run.Report!.Nodes.Single(n => n.Name == node).Outcome);
        Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Node == node);
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackDone && e.Node == node);
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("API unreachable for 15 s (past the 5 s OFFLINE deadline) while a node is out of rotation",
            $"{node} restored on 8.19.3 and back in rotation once the API answered again; run halted", run.ErrorId, $"next step: {run.Report.NextStep}");

        await HaltedRuns.ResumeToCompletionAsync(lab, "resume after the API outage", profile);
        lab.Record("API unreachable past the deadline, then -Resume", "upgraded 3/3, STABLE", null);
    }
}
