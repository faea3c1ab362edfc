using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

public sealed class RollingUpgradeRunnerTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    private void Loads()
    {
        _f.World["node-1"].TasksTotal = 5;
        _f.World["node-1"].ActiveUsers = 10;
        _f.World["node-2"].TasksTotal = 1;
        _f.World["node-2"].ActiveUsers = 3;
        // node-3 reports no counts: last.
    }

    [Fact]
    public async Task Full_upgrade_of_three_nodes_least_busy_first()
    {
        Loads();
        var result = await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None);

        var report = result.Report!;
        Assert.True(report.Succeeded, report.Summary);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal("STABLE", report.FinalState);
        Assert.Equal(new[] { "node-2", "node-1", "node-3" }, report.Nodes.Select(n => n.Name));
        Assert.All(report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
        Assert.All(report.Nodes, n => Assert.Equal(From, n.FromVersion));
        Assert.Contains("3/3 nodes", report.Summary);

        var ops = _f.World.Operations;
        var start = ops.IndexOf("cluster:start");
        Assert.All(new[] { "node-1", "node-2", "node-3" }, n => Assert.True(ops.IndexOf(n + ":pre-stage") < start, "pre-stage before upgrade mode"));
        var perNode = new[] { ":take-out", ":stop", ":install:" + To, ":start:" + To, ":put-back" };
        var expected = new[] { "node-2", "node-1", "node-3" }.SelectMany(n => perNode.Select(s => n + s)).Append("cluster:approve");
        Assert.Equal(expected, ops.Skip(start + 1));

        // Timings in virtual time: drain 3 s, stop 5 s + OFFLINE noticed within a poll, start 20 s.
        foreach (var n in report.Nodes)
        {
            Assert.Equal(TimeSpan.FromSeconds(3), n.DrainTime);
            Assert.InRange(n.StopTime!.Value.TotalSeconds, 5.5, 6.5);
            Assert.InRange(n.StartTime!.Value.TotalSeconds, 20, 21);
            var ratio = n.OutOfRotation!.Value.TotalSeconds / (n.StopTime.Value + n.StartTime.Value).TotalSeconds;
            Assert.InRange(ratio, 1.0, 1.05);
            Assert.Equal(TimeSpan.Zero, n.Overhead);
        }

        var journal = await _f.ReadJournal();
        Assert.Equal(JournalKinds.RunStarted, journal[0].Kind);
        Assert.Equal(new[] { "node-2", "node-1", "node-3" }, journal[0].NodeOrder);
        Assert.Equal(JournalKinds.RunCompleted, journal[^1].Kind);
        foreach (var step in result.Plan.Steps)
        {
            Assert.Contains(journal, e => e.Step == step.Key && e.Kind == JournalKinds.StepBegin);
            Assert.Contains(journal, e => e.Step == step.Key && e.Kind == JournalKinds.StepDone);
        }
        Assert.False(File.Exists(_f.Journal.LockFile("prod")), "the lock is released");
    }

    [Fact]
    public void Order_is_least_tasks_then_least_users_unknown_last_ties_by_name()
    {
        using var f = new UpgradeFixture(To, "d", "a", "c", "b");
        var cluster = f.World.Cluster();
        var counts = new Dictionary<string, (int? tasks, int? users)> { ["a"] = (null, null), ["b"] = (2, 5), ["c"] = (2, 1), ["d"] = (2, null) };
        foreach (var n in cluster.Nodes) (n.TasksTotal, n.ActiveUserCount) = counts[n.Name!];

        var order = UpgradePlanner.Order(f.Profile, cluster).Select(n => n.Name);

        Assert.Equal(new[] { "c", "b", "d", "a" }, order);
    }

    [Fact]
    public async Task WhatIf_prints_every_step_and_changes_nothing()
    {
        _f.Host.Allow = false;

        var result = await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None);

        Assert.True(result.PlanOnly);
        Assert.Empty(_f.World.Operations);
        Assert.False(_f.World.UpgradeMode);
        Assert.Empty(await _f.ReadJournal());
        Assert.Equal(result.Plan.Steps.Count, _f.Host.Asked.Count);
        Assert.Equal(3 + 1 + 3 * 7 + 2, result.Plan.Steps.Count);
        Assert.Contains(_f.Host.Asked, a => a.target == "node-1" && a.action.Contains("Stop Bitbucket"));
        Assert.Contains(_f.Host.Asked, a => a.action.Contains("POST /rest/zdu/approve"));
        Assert.False(File.Exists(_f.Journal.LockFile("prod")));
    }

    [Fact]
    public async Task A_node_the_API_shows_in_ERROR_fails_the_health_gate_at_once_not_at_the_start_timeout()
    {
        // Issue 12 problem 7: /status never says ERROR here (it just never says RUNNING); the API says ERROR.
        Loads();
        _f.World["node-1"].FailStartOnVersion = To;

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        var error = ex.Report.Nodes.Single(n => n.Name == "node-1").Error;
        Assert.Contains("shows node node-1 in ERROR", error);
        Assert.Contains("log", error);
        var journal = await _f.ReadJournal();
        var began = journal.Last(e => e.Kind == JournalKinds.StepBegin && e.Step == "node-1/health-gate").Time;
        var failed = journal.Single(e => e.Kind == JournalKinds.StepFailed && e.Step == "node-1/health-gate").Time;
        Assert.True(failed - began < _f.Profile.Timeouts.Start / 2,
            $"the gate failed {(failed - began).TotalSeconds:0} s (virtual) after it began; the start timeout is {_f.Profile.Timeouts.Start.TotalSeconds:0} s");
    }

    [Fact]
    public async Task A_node_that_fails_to_start_is_rolled_back_and_the_run_halts_then_resumes()
    {
        Loads(); // order node-2, node-1, node-3
        _f.World["node-1"].FailStartOnVersion = To;

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        Assert.Equal("UpgradeNodeFailed", ex.ErrorId);
        Assert.Contains("Node node-1 failed at step 'node-1/health-gate'", ex.Message);
        Assert.Contains("node node-1 runs 8.19.3 again and is back in rotation", ex.Message);
        Assert.Contains("-Resume", ex.Message);
        Assert.Contains("MIXED", ex.Message);
        Assert.Contains("cannot be cancelled", ex.Message);
        Assert.Equal(From, _f.World["node-1"].InstalledVersion);
        Assert.True(_f.World["node-1"].Running);
        Assert.Equal(RotationState.InRotation, _f.World["node-1"].Rotation);
        Assert.Equal(NodeState.ACTIVE, _f.World.NodeStateOf(_f.World["node-1"]));
        Assert.DoesNotContain(_f.World.Operations, o => o.StartsWith("node-3:", StringComparison.Ordinal) && o != "node-3:pre-stage");
        Assert.DoesNotContain("cluster:approve", _f.World.Operations);
        var report = ex.Report;
        Assert.Equal(new[] { NodeOutcome.Upgraded, NodeOutcome.RolledBack, NodeOutcome.NotStarted }, report.Nodes.Select(n => n.Outcome));
        // The fake's API shows the node ERROR once its start fails: the gate says so instead of waiting out the start timeout.
        Assert.Contains("shows node node-1 in ERROR", report.Nodes.Single(n => n.Name == "node-1").Error);
        var journal = await _f.ReadJournal();
        Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Step == "node-1/health-gate");
        Assert.Contains(journal, e => e.Kind == JournalKinds.RollbackDone && e.Node == "node-1");
        Assert.Equal(JournalKinds.RunHalted, journal[^1].Kind);

        // Fixed: the resumed run continues with node-1 and does not touch node-2 again.
        _f.World["node-1"].FailStartOnVersion = null;
        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None);

        Assert.True(resumed.Report!.Succeeded);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-2:stop"));
        Assert.Equal(NodeOutcome.AlreadyUpgraded, resumed.Report.Nodes.Single(n => n.Name == "node-2").Outcome);
        Assert.Equal(1, _f.World.Count("cluster:start"));
    }

    [Fact]
    public async Task When_the_first_node_fails_the_next_step_offers_to_cancel_upgrade_mode()
    {
        _f.World["node-1"].FailStartOnVersion = To; // all loads unknown: node-1 first by name

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        Assert.Contains("READY_TO_UPGRADE", ex.Message);
        Assert.Contains("Disable-BbUpgradeMode", ex.Message);
        Assert.DoesNotContain("/rest/zdu/", ex.Message);
        Assert.Equal(ClusterState.READY_TO_UPGRADE, _f.World.Cluster().State);
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));
    }

    [Fact]
    public async Task Credentials_refused_mid_node_fail_at_once_and_the_node_goes_back_on_its_own_status()
    {
        // node-1 first (no loads). Out of rotation, the sysadmin's password changes: every API call gets 401 from now on.
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation) _f.World.RefuseCredentials = true;
            return Task.CompletedTask;
        };
        var started = _f.World.Clock.Now;

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Equal("UpgradeNodeFailed", ex.ErrorId);
        Assert.Equal(BbErrorCategory.AuthenticationError, ex.Category);
        Assert.Contains("did not accept the credentials", ex.Message);
        // No wait ran to its deadline: the 401 failed the OFFLINE wait at once, and the restore took the node's own word.
        Assert.Contains("'node-1/wait-offline'", ex.Message);
        Assert.True(_f.World.Clock.Now - started < TimeSpan.FromSeconds(60), $"took {_f.World.Clock.Now - started}");
        Assert.Contains("by its own /status", ex.Message);
        Assert.Equal(From, _f.World["node-1"].InstalledVersion);
        Assert.True(_f.World["node-1"].Running);
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));
        Assert.Equal(NodeOutcome.RolledBack, ex.Report.Nodes.Single(n => n.Name == "node-1").Outcome);
        // The cluster could not be read afterwards: the next step does not pretend to know its state.
        Assert.Contains("could not be read", ex.Message);
        Assert.DoesNotContain("0 nodes already run", ex.Message);
    }

    [Fact]
    public async Task Credentials_refused_after_a_node_was_upgraded_say_the_upgrade_must_be_finished()
    {
        // node-1 is upgraded and back; node-2's turn: out of rotation, the password changes. The cluster cannot be read
        // afterwards, but this run itself upgraded node-1, so cancelling is no longer an option and the message says so.
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && e.Node == "node-2") _f.World.RefuseCredentials = true;
            return Task.CompletedTask;
        };

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Equal(NodeOutcome.Upgraded, ex.Report.Nodes.Single(n => n.Name == "node-1").Outcome);
        Assert.Contains("must finish the upgrade (1 node already upgraded", ex.Message);
        Assert.DoesNotContain("may still be cancelled is unknown", ex.Message);
        Assert.All(_f.World.Nodes, n => Assert.Equal(RotationState.InRotation, n.Rotation));
    }

    [Fact]
    public async Task A_failing_custom_check_rolls_the_node_back()
    {
        var events = new List<UpgradeEvent>();
        UpgradeHook hook = (e, ct) =>
        {
            lock (events) events.Add(e);
            if (e.Phase == UpgradePhase.NodeHealthy && e.Node == "node-2") throw new InvalidOperationException("smoke test failed: git clone returned 500");
            return Task.CompletedTask;
        };

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));

        Assert.Contains("smoke test failed", ex.Message);
        Assert.Equal(From, _f.World["node-2"].InstalledVersion);
        Assert.Equal(RotationState.InRotation, _f.World["node-2"].Rotation);
        Assert.Equal(new[] { UpgradePhase.PreflightPassed, UpgradePhase.PreStaged, UpgradePhase.UpgradeModeEnabled },
            events.Where(e => e.Phase is not (UpgradePhase.StepStarting or UpgradePhase.StepDone)).Take(3).Select(e => e.Phase));
        Assert.Contains(events, e => e.Phase == UpgradePhase.NodeUpgraded && e.Node == "node-1");
        var failed = Assert.Single(events, e => e.Phase == UpgradePhase.NodeFailed);
        Assert.Equal("node-2", failed.Node);
        Assert.Contains("runs 8.19.3 again", failed.Message);
        Assert.Equal(UpgradePhase.Halted, events[^1].Phase);
        Assert.NotNull(events[^1].Report);
    }

    [Fact]
    public async Task Ctrl_C_puts_a_drained_node_back_and_leaves_a_resumable_journal()
    {
        using var cts = new CancellationTokenSource();
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && e.Node == "node-2") cts.Cancel();
            return Task.CompletedTask;
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), cts.Token));

        Assert.Equal(RotationState.InRotation, _f.World["node-2"].Rotation);
        Assert.Equal(From, _f.World["node-2"].InstalledVersion);
        var journal = await _f.ReadJournal();
        Assert.Equal(JournalKinds.RunCancelled, journal[^1].Kind);
        Assert.False(File.Exists(_f.Journal.LockFile("prod")));

        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None);
        Assert.True(resumed.Report!.Succeeded);
        Assert.True(resumed.Report.Resumed);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-1:stop"));
    }

    [Fact]
    public async Task Without_resume_an_interrupted_run_is_not_adopted_silently()
    {
        _f.World["node-1"].FailStartOnVersion = To;
        _f.World["node-2"].TasksTotal = 9; // node-1 is not first: node-3 gets upgraded, then node-1 fails
        _f.World["node-3"].TasksTotal = 0;
        _f.World["node-1"].TasksTotal = 1;
        await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(2), CancellationToken.None));

        Assert.Equal("PreflightResumeRequired", ex.ErrorId);
        Assert.Contains("-Resume", ex.Message);
    }

    public void Dispose() => _f.Dispose();
}

public sealed class NodeUpgradeTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task One_node_is_upgraded_when_upgrade_mode_is_on()
    {
        _f.World.StartUpgradeMode();

        var report = await _f.Runner().UpgradeNodeAsync(_f.Profile, "node-2", Options(1), CancellationToken.None);

        Assert.Equal(NodeOutcome.Upgraded, report!.Outcome);
        Assert.Equal(From, report.FromVersion);
        Assert.Equal(To, _f.World["node-2"].InstalledVersion);
        Assert.Equal(RotationState.InRotation, _f.World["node-2"].Rotation);
        Assert.Equal(ClusterState.MIXED, _f.World.Cluster().State);
        Assert.DoesNotContain(_f.World.Operations, o => o.StartsWith("node-1", StringComparison.Ordinal) || o.StartsWith("node-3", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_upgrade_mode_nothing_is_touched()
    {
        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().UpgradeNodeAsync(_f.Profile, "node-2", Options(1), CancellationToken.None));
        Assert.Equal("UpgradeModeOff", ex.ErrorId);
        Assert.Empty(_f.World.Operations);
    }

    [Fact]
    public async Task A_failing_node_is_restored_and_the_error_says_so()
    {
        _f.World.StartUpgradeMode();
        _f.World["node-3"].FailStartOnVersion = To;

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().UpgradeNodeAsync(_f.Profile, "node-3", Options(1), CancellationToken.None));

        Assert.Equal("UpgradeNodeFailed", ex.ErrorId);
        Assert.Contains("runs 8.19.3 again and is back in rotation", ex.Message);
        Assert.Contains("Invoke-BbNodeUpgrade", ex.Message);
        Assert.Equal(From, _f.World["node-3"].InstalledVersion);
        Assert.Equal(RotationState.InRotation, _f.World["node-3"].Rotation);
        Assert.Equal(ClusterState.READY_TO_UPGRADE, _f.World.Cluster().State);
    }

    [Fact]
    public async Task An_unknown_node_is_named()
    {
        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().UpgradeNodeAsync(_f.Profile, "node-7", Options(1), CancellationToken.None));
        Assert.Equal("ProfileUnknownNode", ex.ErrorId);
        Assert.Contains("node-1, node-2, node-3", ex.Message);
    }

    public void Dispose() => _f.Dispose();
}

public sealed class ResumeEdgeTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task A_resumed_node_that_already_runs_the_target_but_fails_its_gate_goes_back_to_the_original_version()
    {
        // Killed after node-1 started on the target but before its health gate; then node-1 turns out broken.
        var process = new FakeProcess();
        _f.World["node-1"].FailStartOnVersion = To;
        var first = _f.Runner(new KillAfterStep(_f.Journal, process, "node-1/start"), process);
        await Assert.ThrowsAnyAsync<Exception>(() => first.RunAsync(_f.Profile, Options(40001), CancellationToken.None));
        Assert.Equal(To, _f.World["node-1"].InstalledVersion);

        var ex = await Assert.ThrowsAsync<UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(40002, resume: true), CancellationToken.None));

        Assert.Equal("UpgradeNodeFailed", ex.ErrorId);
        Assert.Equal(From, _f.World["node-1"].InstalledVersion);
        Assert.Equal(RotationState.InRotation, _f.World["node-1"].Rotation);
        Assert.Contains("runs 8.19.3 again", ex.Message);
    }

    /// <summary>Kills the process right after the step-done line of one step.</summary>
    private sealed class KillAfterStep : IJournalStore
    {
        private readonly IJournalStore _inner;
        private readonly FakeProcess _process;
        private readonly string _step;

        public KillAfterStep(IJournalStore inner, FakeProcess process, string step)
        {
            _inner = inner;
            _process = process;
            _step = step;
        }

        public Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken ct) => _inner.ReadAsync(cluster, ct);

        public async Task AppendAsync(string cluster, JournalEntry entry, CancellationToken ct)
        {
            await _inner.AppendAsync(cluster, entry, ct);
            if (entry.Step == _step && entry.Kind == JournalKinds.StepDone)
            {
                _process.Kill();
                throw new SimulatedKillException();
            }
        }

        public Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, Action<string>? waiting, CancellationToken ct) => _inner.AcquireLockAsync(cluster, owner, waiting, ct);
        public string Describe(string cluster) => _inner.Describe(cluster);
    }

    public void Dispose() => _f.Dispose();
}
