using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>-StopAfter: a canary node, a clean pause (MIXED, upgrade mode on, all in rotation, journal paused), -Resume the rest.</summary>
public sealed class StopAfterTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    private static RollingUpgradeOptions StopAfter(int n, int pid, bool resume = false)
    {
        var o = Options(pid, resume);
        o.StopAfter = n;
        return o;
    }

    [Fact]
    public async Task StopAfter_1_pauses_cleanly_and_Resume_does_the_rest()
    {
        var first = (await _f.Runner().RunAsync(_f.Profile, StopAfter(1, 1), CancellationToken.None)).Report!;

        Assert.True(first.Paused, first.Summary);
        Assert.False(first.Succeeded);
        Assert.Equal(1, first.StopAfter);
        Assert.Contains("PAUSED after 1 node(s)", first.Summary);
        Assert.Contains("-Resume", first.NextStep);
        Assert.Equal(new[] { NodeOutcome.Upgraded, NodeOutcome.NotStarted, NodeOutcome.NotStarted }, first.Nodes.Select(n => n.Outcome));
        Assert.True(_f.World.UpgradeMode, "upgrade mode stays on");
        Assert.Equal(ClusterState.MIXED, _f.World.Cluster().State);
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));
        Assert.Equal(1, _f.World.Nodes.Count(n => n.InstalledVersion == To));
        Assert.DoesNotContain("cluster:approve", _f.World.Operations);
        var journal = await _f.ReadJournal();
        Assert.Equal(JournalKinds.RunPaused, journal[^1].Kind);
        Assert.False(File.Exists(_f.Journal.LockFile("prod")), "the lock is released");

        var rest = (await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None)).Report!;

        Assert.True(rest.Succeeded, rest.Summary);
        Assert.False(rest.Paused);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, rest.Nodes.Count(n => n.Outcome == NodeOutcome.AlreadyUpgraded));
        Assert.Equal(JournalKinds.RunCompleted, (await _f.ReadJournal())[^1].Kind);
    }

    [Fact]
    public async Task A_resumed_run_with_StopAfter_counts_only_the_nodes_it_upgrades()
    {
        await _f.Runner().RunAsync(_f.Profile, StopAfter(1, 1), CancellationToken.None);

        var second = (await _f.Runner().RunAsync(_f.Profile, StopAfter(1, 2, resume: true), CancellationToken.None)).Report!;

        Assert.True(second.Paused, second.Summary);
        Assert.Equal(2, _f.World.Nodes.Count(n => n.InstalledVersion == To));
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));
    }

    [Fact]
    public async Task WhatIf_shows_this_runs_steps_and_the_pause_and_not_the_later_nodes()
    {
        _f.Host.Allow = false;

        var result = await _f.Runner().RunAsync(_f.Profile, StopAfter(1, 1), CancellationToken.None);

        Assert.True(result.PlanOnly);
        Assert.Equal(1, result.Plan.StopAfter);
        var first = result.Plan.NodeOrder[0];
        var asked = _f.Host.Asked.ToList();
        Assert.Contains(asked, a => a.action.StartsWith("pause after 1 node(s) (-StopAfter 1)", StringComparison.Ordinal));
        Assert.Contains(asked, a => a.target.Contains(first));
        foreach (var later in result.Plan.NodeOrder.Skip(1))
        {
            // Pre-staging runs on every node; nothing else of a later node is in this run's plan.
            Assert.All(asked.Where(a => a.target.Contains(later)), a => Assert.Contains("stage", a.action, StringComparison.OrdinalIgnoreCase));
        }
        Assert.DoesNotContain(asked, a => a.action.StartsWith("Finalize the upgrade", StringComparison.Ordinal) || a.action.StartsWith("Wait until the cluster is STABLE", StringComparison.Ordinal));
        Assert.DoesNotContain("cluster:start", _f.World.Operations);
    }

    [Fact]
    public async Task StopAfter_at_or_above_the_node_count_does_the_whole_upgrade()
    {
        var report = (await _f.Runner().RunAsync(_f.Profile, StopAfter(3, 1), CancellationToken.None)).Report!;

        Assert.True(report.Succeeded, report.Summary);
        Assert.False(report.Paused);
        Assert.True(_f.World.AllOn(To));
    }

    public void Dispose() => _f.Dispose();
}
