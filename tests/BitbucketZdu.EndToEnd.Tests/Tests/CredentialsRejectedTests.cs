using System.Management.Automation;
using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>The sysadmin's password changes while a node is out of rotation (simulator fault adminPassword): every API call now gets 401.</summary>
public sealed class CredentialsRejectedTests
{
    // Holds the canary, so a leak of the new password is caught by the same scan.
    private const string ChangedPassword = Canary.Password + "-changed";
    private readonly ITestOutputHelper _output;

    public CredentialsRejectedTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Credentials_rejected_mid_run_halt_with_the_node_back_in_rotation_and_resume_with_the_new_password_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var struck = new StrongBox<string?>();
        var hook = E2eLab.Once("NodeOutOfRotation", _ => ChangePassword(lab), struck);

        var run = await lab.InvokeRollingUpgradeAsync(hook: hook);
        var node = struck.Value!;
        lab.Print($"credentials rejected while {node} is out of rotation", run);
        Assert.Equal("UpgradeNodeFailed", run.ErrorId);
        Assert.Contains("did not accept the credentials", run.ErrorMessage);
        Assert.Contains("Check the user name and password", run.ErrorMessage);
        // Failed at once on the 401, not after a wait's deadline.
        Assert.True(run.Elapsed < TimeSpan.FromSeconds(30), $"took {run.Elapsed}");

        // The API refuses the lab's credential now: the checks go by the journal, the balancer and the users.
        var journal = JournalRun.Last(await lab.JournalAsync())!.Entries;
        _output.WriteLine("journal: " + HaltedRuns.Tail(journal));
        Assert.Equal(JournalKinds.RunHalted, journal.Last().Kind);
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackDone && e.Node == node);
        Assert.False(run.Succeeded);
        Assert.Contains(node, run.ErrorMessage);
        Assert.Matches("(?i)-Resume", run.ErrorMessage);
        Assert.Equal(NodeOutcome.RolledBack, run.Report!.Nodes.Single(n => n.Name == node).Outcome);
        Canary.AssertAbsent(File.ReadAllText(lab.JournalFile), "journal");
        await lab.AssertAllInRotationAsync();
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("credentials rejected mid-run (sysadmin password changed while a node is out of rotation)",
            $"failed at once on the 401; {node} restored on 8.19.3 and back in rotation (checked by its own /status); run halted", run.ErrorId,
            $"next step: {run.Report.NextStep}");

        // After the run the password goes back, so that the lab's checks (with the canary credential) can read the cluster.
        await HaltedRuns.ResumeToCompletionAsync(lab, "resume with the new password", credential: Changed, afterRun: () => lab.Cluster.ClearFault("cluster"));
        lab.Record("credentials rejected mid-run, then -Resume with the new password", "upgraded 3/3, STABLE", null);
    }

    [Fact]
    public async Task Credentials_rejected_between_nodes_halt_with_ZduUnauthorized_and_resume_with_the_new_password_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var struck = new StrongBox<string?>();
        // The first node is upgraded and back in rotation; the next API call (reading the next node's state) gets 401.
        var run = await lab.InvokeRollingUpgradeAsync(hook: E2eLab.Once("NodeUpgraded", _ => ChangePassword(lab), struck));
        lab.Print($"credentials rejected after {struck.Value} was upgraded", run);

        Assert.False(run.Succeeded);
        Assert.Equal("ZduUnauthorized", run.ErrorId);
        Assert.Contains("did not accept the credentials", run.ErrorMessage);
        Assert.Matches("(?i)-Resume", run.ErrorMessage);
        Assert.Contains("could not be read", run.ErrorMessage);
        Assert.Equal(NodeOutcome.Upgraded, run.Report!.Nodes.Single(n => n.Name == struck.Value).Outcome);
        Assert.Equal(JournalKinds.RunHalted, JournalRun.Last(await lab.JournalAsync())!.Entries.Last().Kind);
        Canary.AssertAbsent(File.ReadAllText(lab.JournalFile), "journal");
        await lab.AssertAllInRotationAsync();
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("credentials rejected between nodes (sysadmin password changed after a node was upgraded)",
            $"halted before the next node was touched; {struck.Value} on 8.19.4, the others on 8.19.3, all in rotation", run.ErrorId, $"next step: {run.Report.NextStep}");

        await HaltedRuns.ResumeToCompletionAsync(lab, "resume with the new password", credential: Changed, afterRun: () => lab.Cluster.ClearFault("cluster"));
        lab.Record("credentials rejected between nodes, then -Resume with the new password", "upgraded 3/3, STABLE", null);
    }

    private static PSCredential Changed => new(Canary.UserName, Canary.Secure(ChangedPassword));

    /// <summary>Changes the sysadmin's password on every node; returns once each node refuses the old one (nodes read faults at each heartbeat).</summary>
    private static void ChangePassword(E2eLab lab)
    {
        lab.Cluster.SetFault("cluster", $$"""{"adminPassword": "{{ChangedPassword}}"}""");
        Eventually.UntilAsync(async () =>
        {
            foreach (var n in lab.Cluster.Nodes)
            {
                using var api = lab.ApiClient(n.Url);
                try
                {
                    await api.GetClusterAsync();
                    return false;
                }
                catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.Unauthorized)
                {
                }
            }
            return true;
        }, TimeSpan.FromSeconds(10), "every node refusing the old password").GetAwaiter().GetResult();
    }
}
