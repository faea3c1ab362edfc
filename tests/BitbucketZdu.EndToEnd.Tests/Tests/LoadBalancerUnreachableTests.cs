using System.Collections;
using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// HAProxy's runtime API (the profile's Endpoint) goes through a TCP relay the test cuts once the first node is healthy
/// on the new version, just before it would go back into rotation: users still reach the cluster through HAProxy, but
/// the module can no longer tell HAProxy anything. The run must halt saying so, leave no node out of rotation that it
/// could have put back, and -Resume must finish once the runtime API answers again.
/// </summary>
public sealed class LoadBalancerUnreachableTests
{
    private readonly ITestOutputHelper _output;

    public LoadBalancerUnreachableTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Load_balancer_unreachable_at_put_back_halts_naming_it_and_resume_completes()
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var haproxy = Assert.IsType<HAProxyFront>(lab.Front);
        await using var relay = new TcpRelay(new Uri($"http://127.0.0.1:{haproxy.AdminPort}/"));
        var profile = lab.Profile();
        var lb = (Hashtable)((object[])profile["LoadBalancers"]!)[0];
        ((Hashtable)lb["Settings"]!)["Endpoint"] = $"tcp://127.0.0.1:{relay.Port}";
        var struck = new StrongBox<string?>();

        var run = await lab.InvokeRollingUpgradeAsync(profile: profile, hook: E2eLab.Once("NodeHealthy", _ => relay.Cut(), struck));
        var node = struck.Value!;
        lab.Print($"HAProxy runtime API unreachable before {node} goes back into rotation", run);
        _output.WriteLine($"connections reset: {relay.Refused}");
        var journal = JournalRun.Last(await lab.JournalAsync())!.Entries;
        _output.WriteLine("journal: " + HaltedRuns.Tail(journal));

        // What happened: halted, the error names the node, the load balancer that could not be reached, and -Resume.
        Assert.False(run.Succeeded, "the run should have halted");
        Assert.NotNull(run.ErrorId);
        Assert.Contains(node, run.ErrorMessage);
        Assert.Contains($"127.0.0.1:{relay.Port}", run.ErrorMessage);
        Assert.Matches("(?i)-Resume", run.ErrorMessage);
        // A healthy node on the new version is not rolled back because the load balancer cannot be told: it waits out of rotation.
        Assert.Contains("passed the health gate", run.ErrorMessage);
        Assert.Contains("-Resume puts it back", run.ErrorMessage);
        Assert.True(relay.Refused > 0, "the cut should have hit the runtime API");
        Assert.Equal(JournalKinds.RunHalted, journal.Last().Kind);
        Canary.AssertAbsent(File.ReadAllText(lab.JournalFile), "journal");
        // The other nodes were never touched and keep serving; no user request failed.
        await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames.Where(n => n != node));
        var cluster = await lab.ClusterStateAsync();
        _output.WriteLine($"cluster after: {cluster.State}, upgrade mode {cluster.UpgradeModeEnabled}, " + string.Join(", ", cluster.Nodes.Select(n => $"{n.Name} {n.State} {n.Version}")));
        Assert.All(cluster.Nodes, n => Assert.Equal(NodeState.ACTIVE, n.State));
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("load balancer runtime API unreachable before a node goes back into rotation",
            $"run halted naming the load balancer; {node} {run.Report?.Nodes.FirstOrDefault(n => n.Name == node)?.Outcome}; every node ACTIVE; the others served", run.ErrorId, run.ErrorMessage);

        // The way forward the error names: once HAProxy's runtime API answers again, -Resume puts the node back and finishes.
        relay.Restore();
        await HaltedRuns.ResumeToCompletionAsync(lab, "resume once the load balancer answers", profile);
        lab.Record("load balancer unreachable, then -Resume", "upgraded 3/3, STABLE, all in rotation", null);
    }
}
