using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// -MaxUnavailable n on virtual time: batches of n out at once, never more, the capacity rule (⌈N/2⌉ ACTIVE and in
/// rotation) at every sample of the fakes, refusal before anything changes, a failure restoring its whole batch, and a
/// run killed mid-batch finished by -Resume.
/// </summary>
public sealed class MaxUnavailableTests : IDisposable
{
    private static readonly string[] Six = { "node-1", "node-2", "node-3", "node-4", "node-5", "node-6" };
    private readonly UpgradeFixture _f = new(To, Six);

    public MaxUnavailableTests() => _f.Data["MaxUnavailable"] = 3;

    /// <summary>
    /// Holds each node of the first <paramref name="batches"/> batches at "out of rotation" until <paramref name="size"/>
    /// nodes are out together: a runner that took them one at a time would time out here (10 s), so passing proves they
    /// were out at the same time. The fakes answer at once, so without it the batch would run one node after another.
    /// </summary>
    private static UpgradeHook Together(int size, int batches = int.MaxValue, UpgradeHook? then = null)
    {
        var gate = new object();
        var waiting = new List<TaskCompletionSource>();
        var released = 0;
        return async (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && released < batches)
            {
                TaskCompletionSource tcs;
                lock (gate)
                {
                    tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    waiting.Add(tcs);
                    if (waiting.Count == size)
                    {
                        foreach (var w in waiting) w.TrySetResult();
                        waiting.Clear();
                        released++;
                    }
                }
                await tcs.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
            }
            if (then is not null) await then(e, ct);
        };
    }

    [Fact]
    public async Task Nodes_go_in_batches_of_n_never_more_than_n_out_and_the_capacity_rule_holds_at_every_sample()
    {
        var options = Options(1, hook: Together(3));

        var report = (await _f.Runner().RunAsync(_f.Profile, options, CancellationToken.None)).Report!;

        Assert.True(report.Succeeded, report.Summary);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(3, report.MaxUnavailable);
        Assert.Contains("in batches of up to 3", report.Summary);
        Assert.Equal(new int?[] { 1, 1, 1, 2, 2, 2 }, report.Nodes.Select(n => n.Batch));
        Assert.Equal(3, _f.World.MaxOutSeen);
        Assert.True(_f.World.MinServingSeen >= 3, $"at least ⌈6/2⌉ = 3 nodes ACTIVE and in rotation at every sample; saw {_f.World.MinServingSeen}");
        // The next batch only once the whole batch is back: every put-back of batch 1 before any take-out of batch 2.
        var ops = _f.World.Operations.ToList();
        var lastPutBack = new[] { "node-1", "node-2", "node-3" }.Max(n => ops.IndexOf(n + ":put-back"));
        var firstTakeOut = new[] { "node-4", "node-5", "node-6" }.Min(n => ops.IndexOf(n + ":take-out"));
        Assert.True(lastPutBack < firstTakeOut, string.Join(", ", ops));
        Assert.Equal(3, (await _f.ReadJournal()).First(e => e.Kind == JournalKinds.RunStarted).MaxUnavailable);
    }

    [Fact]
    public async Task The_default_takes_one_node_at_a_time()
    {
        _f.Data.Remove("MaxUnavailable");

        var report = (await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None)).Report!;

        Assert.True(report.Succeeded, report.Summary);
        Assert.Equal(1, _f.World.MaxOutSeen);
        Assert.Equal(new int?[] { 1, 2, 3, 4, 5, 6 }, report.Nodes.Select(n => n.Batch));
    }

    [Theory]
    [InlineData(4, null, "UpgradeCapacityRuleBroken")]   // 6 - 4 = 2 < ⌈6/2⌉
    [InlineData(0, null, "UpgradeMaxUnavailableInvalid")]
    [InlineData(2, 5, "UpgradeCapacityRuleBroken")]      // MinNodesInRotation 5: 6 - 2 = 4 < 5
    [InlineData(1, 7, "UpgradeCapacityRuleBroken")]      // more than the profile has
    public async Task A_MaxUnavailable_the_rule_forbids_is_refused_before_anything_changes(int n, int? min, string errorId)
    {
        _f.Data.Remove("MaxUnavailable");
        if (min is int m) _f.Data["MinNodesInRotation"] = m;
        var profile = _f.Profile;
        profile.MaxUnavailable = n; // as -MaxUnavailable sets it

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(profile, Options(1), CancellationToken.None));

        Assert.Equal(errorId, ex.ErrorId);
        Assert.Equal(BbErrorCategory.InvalidArgument, ex.Category);
        Assert.Contains("Nothing was changed", ex.Message);
        Assert.Empty(_f.World.Operations);
        Assert.Empty(await _f.ReadJournal());
        // -WhatIf (PlanAsync) refuses the same way.
        var plan = await Assert.ThrowsAsync<BbException>(() => _f.Runner().PlanAsync(profile, false, CancellationToken.None));
        Assert.Equal(errorId, plan.ErrorId);
    }

    [Fact]
    public async Task A_batch_is_not_taken_out_when_the_nodes_outside_it_would_be_too_few()
    {
        using var f = new UpgradeFixture(To, Six.Append("node-7").ToArray());
        f.Data["MaxUnavailable"] = 3; // 7 - 3 = 4 = ⌈7/2⌉: allowed while every other node serves
        // Someone takes node-7 out of rotation while batch 1 runs: batch 2 (node-4..6) would leave 3 serving, not 4.
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeUpgraded && e.Node == "node-1") f.World["node-7"].Rotation = RotationState.OutOfRotation;
            return Task.CompletedTask;
        };

        var halted = await Assert.ThrowsAsync<UpgradeHaltedException>(() => f.Runner().RunAsync(f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Equal("UpgradeCapacityLow", halted.ErrorId);
        Assert.Contains("node-4, node-5, node-6", halted.Message);
        Assert.Contains("needs at least 4", halted.Message);
        Assert.DoesNotContain(f.World.Operations, o => o.StartsWith("node-4:", StringComparison.Ordinal) && !o.EndsWith("pre-stage", StringComparison.Ordinal));
        Assert.Equal(3, f.World.Nodes.Count(n => n.InstalledVersion == To));
    }

    [Fact]
    public async Task The_first_failure_in_a_batch_restores_the_whole_batch_and_halts()
    {
        _f.World["node-2"].FailStartOnVersion = To;

        var halted = await Assert.ThrowsAsync<UpgradeHaltedException>(() =>
            _f.Runner().RunAsync(_f.Profile, Options(1, hook: Together(3, batches: 1)), CancellationToken.None));

        var report = halted.Report;
        Assert.False(report.Succeeded);
        Assert.Contains("node-2", halted.Message);
        Assert.Contains("the rest of its batch", halted.Message);
        // Every node of the batch back on its old version and in rotation; nothing of batch 2 touched.
        foreach (var name in new[] { "node-1", "node-2", "node-3" })
        {
            var node = _f.World[name];
            Assert.Equal(From, node.InstalledVersion);
            Assert.True(node.Running, name + " runs");
            Assert.Equal(RotationState.InRotation, node.Rotation);
            Assert.Equal(NodeOutcome.RolledBack, report.Nodes.Single(n => n.Name == name).Outcome);
        }
        Assert.All(new[] { "node-4", "node-5", "node-6" }, n => Assert.DoesNotContain(n + ":take-out", _f.World.Operations));
        Assert.True(_f.World.MaxOutSeen <= 3, $"never more than 3 out; saw {_f.World.MaxOutSeen}");
        Assert.True(_f.World.MinServingSeen >= 3, $"saw {_f.World.MinServingSeen} serving");
        Assert.Equal(JournalKinds.RunHalted, (await _f.ReadJournal())[^1].Kind);
    }

    [Fact]
    public async Task A_run_killed_mid_batch_is_finished_by_Resume_without_repeating_a_destructive_step()
    {
        _f.Journal.FlushToDisk = false;
        var process = new FakeProcess();
        // Killed at the first install of batch 1, while its three nodes are out together.
        var killing = new KillingJournal(_f.Journal, process, int.MaxValue)
        {
            KillAtLine = e => e.Kind == JournalKinds.StepDone && e.Step?.EndsWith("/install", StringComparison.Ordinal) == true,
        };

        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner(killing, process).RunAsync(_f.Profile, Options(40001, hook: Together(3, batches: 1)), CancellationToken.None));
        Assert.True(killing.Fired);
        Assert.Equal(3, _f.World.Nodes.Count(n => n.Rotation != RotationState.InRotation));

        var resumed = (await _f.Runner().RunAsync(_f.Profile, Options(40002, resume: true), CancellationToken.None)).Report!;

        Assert.True(resumed.Succeeded, resumed.Summary);
        Assert.True(_f.World.AllOn(To));
        Assert.True(_f.World.MaxOutSeen <= 3, $"never more than 3 out; saw {_f.World.MaxOutSeen}");
        Assert.True(_f.World.MinServingSeen >= 3, $"saw {_f.World.MinServingSeen} serving");
        foreach (var node in Six)
        {
            Assert.Equal(1, _f.World.Count(node + ":take-out"));
            Assert.Equal(1, _f.World.Count(node + ":stop"));
            Assert.Equal(1, _f.World.Count(node + ":install:" + To));
            Assert.Equal(1, _f.World.Count(node + ":put-back"));
        }
        Assert.DoesNotContain(_f.World.Operations, o => o.Contains(":rollback:", StringComparison.Ordinal));
        Assert.Equal(JournalKinds.RunCompleted, (await _f.ReadJournal())[^1].Kind);
    }

    [Fact]
    public async Task A_run_killed_mid_batch_whose_journal_was_lost_is_adopted_with_the_same_MaxUnavailable_and_refused_with_a_smaller_one()
    {
        _f.Journal.FlushToDisk = false;
        var process = new FakeProcess();
        var killing = new KillingJournal(_f.Journal, process, int.MaxValue)
        {
            KillAtLine = e => e.Kind == JournalKinds.StepDone && e.Step?.EndsWith("/install", StringComparison.Ordinal) == true,
        };
        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner(killing, process).RunAsync(_f.Profile, Options(40001, hook: Together(3, batches: 1)), CancellationToken.None));
        File.Delete(_f.Journal.JournalFile("prod"));
        File.Delete(_f.Journal.LockFile("prod"));
        var adopt = Options(40002, resume: true);
        adopt.Adopt = true;

        // One at a time cannot tell which of the three nodes out it was upgrading.
        var oneAtATime = _f.Profile;
        oneAtATime.MaxUnavailable = 1;
        var refused = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(oneAtATime, adopt, CancellationToken.None));
        Assert.Equal("PreflightAdoptAmbiguous", refused.ErrorId);
        Assert.Contains("-MaxUnavailable", refused.Message);
        Assert.DoesNotContain(_f.World.Operations, o => o.EndsWith(":put-back", StringComparison.Ordinal));

        var adopted = (await _f.Runner().RunAsync(_f.Profile, adopt, CancellationToken.None)).Report!;

        Assert.True(adopted.Succeeded, adopted.Summary);
        Assert.True(_f.World.AllOn(To));
        Assert.True(_f.World.MaxOutSeen <= 3, $"never more than 3 out; saw {_f.World.MaxOutSeen}");
        foreach (var node in Six) Assert.Equal(1, _f.World.Count(node + ":install:" + To));
    }

    [Fact]
    public async Task StopAfter_counts_nodes_and_cuts_the_last_batch_short()
    {
        var options = Options(1);
        options.StopAfter = 4;

        var report = (await _f.Runner().RunAsync(_f.Profile, options, CancellationToken.None)).Report!;

        Assert.True(report.Paused, report.Summary);
        Assert.Equal(4, _f.World.Nodes.Count(n => n.InstalledVersion == To));
        Assert.Equal(new int?[] { 1, 1, 1, 2, null, null }, report.Nodes.Select(n => n.Batch));
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));

        var rest = (await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None)).Report!;
        Assert.True(rest.Succeeded, rest.Summary);
        Assert.True(_f.World.AllOn(To));
    }

    [Fact]
    public async Task WhatIf_shows_the_batches()
    {
        _f.Host.Allow = false;
        var options = Options(1);
        options.StopAfter = 4;

        var result = await _f.Runner().RunAsync(_f.Profile, options, CancellationToken.None);

        Assert.True(result.PlanOnly);
        Assert.Equal(3, result.Plan.MaxUnavailable);
        Assert.Equal(new[] { "Batch 1: node-1, node-2, node-3", "Batch 2: node-4" }, result.Plan.Batches.Select(b => b.ToString()));
        var asked = _f.Host.Asked.Select(a => a.action).ToList();
        Assert.Contains(asked, a => a.StartsWith("Batch 1 of 2: take node-1, node-2, node-3 out of rotation and upgrade them at the same time (-MaxUnavailable 3; at least 3 of 6 nodes stay ACTIVE and in rotation)", StringComparison.Ordinal));
        Assert.Contains(asked, a => a.StartsWith("Batch 2 of 2: take node-4 out of rotation and upgrade it", StringComparison.Ordinal));
        Assert.Contains("2 batch(es) of up to 3", result.Plan.ToString());
        Assert.DoesNotContain(_f.World.Operations, o => !o.EndsWith("pre-stage", StringComparison.Ordinal));
    }

    public void Dispose() => _f.Dispose();
}
