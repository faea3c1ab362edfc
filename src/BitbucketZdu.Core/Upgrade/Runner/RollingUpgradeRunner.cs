using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Timing;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>What a run returns: the plan always; the report unless the run was only a plan (-WhatIf / declined).</summary>
    public sealed class RollingUpgradeResult
    {
        public RollingUpgradeResult(PreflightResult preflight, UpgradePlan plan, UpgradeReport? report)
        {
            Preflight = preflight;
            Plan = plan;
            Report = report;
        }

        public PreflightResult Preflight { get; }
        public UpgradePlan Plan { get; }
        public UpgradeReport? Report { get; }
        /// <summary>True when a step was declined (ShouldProcess false: -WhatIf or "No" at -Confirm): nothing was changed.</summary>
        public bool PlanOnly => Report is null;
    }

    /// <summary>
    /// The rolling upgrade: lock → preflight → plan (every step through ShouldProcess) → pre-stage all nodes in parallel →
    /// enable upgrade mode → nodes one at a time → finalize → STABLE → report. Every step is journaled before and after;
    /// a resumed run re-checks the real state and continues at the first step that is not done. The first node failure
    /// restores that node (<see cref="NodeRestore"/>) and halts with <see cref="UpgradeHaltedException"/> (<see cref="RunHalt"/>).
    /// </summary>
    public sealed class RollingUpgradeRunner
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;

        public RollingUpgradeRunner(UpgradePorts ports, IOperationHost host)
        {
            _ports = ports;
            _host = host;
        }

        /// <summary>Preflight and plan only: reads, changes nothing, takes no lock.</summary>
        public async Task<RollingUpgradeResult> PlanAsync(ClusterProfile profile, bool resume, CancellationToken ct, bool adopt = false)
        {
            CapacityRule.Validate(profile);
            var preflight = await new PreflightCheck(_ports, _host).RunAsync(profile, resume, ct, adopt).ConfigureAwait(false);
            foreach (var w in preflight.Findings.Where(f => f.Severity == FindingSeverity.Warning)) _host.Warning(w.ToString());
            preflight.ThrowIfFailed(profile.Name);
            // What a resumed or adopted run found and will do, before it does anything (and under -WhatIf).
            foreach (var f in preflight.Findings.Where(f => f.Severity == FindingSeverity.Info && TakeoverChecks.Contains(f.Check))) _host.Inform(f.Message);
            var plan = UpgradePlanner.Create(profile, preflight.Cluster!, preflight.AdoptedRun?.NodeOrder);
            plan.MaxUnavailable = CapacityRule.BatchSize(profile);
            plan.MinInRotation = profile.RequiredInRotation;
            if (preflight.AdoptedRun?.FromVersion is string from) plan.FromVersion = from;
            if (preflight.AdoptedRun is not null) await MarkDoneAsync(plan, profile, preflight.Cluster!, ct).ConfigureAwait(false);
            return new RollingUpgradeResult(preflight, plan, null);
        }

        /// <summary>
        /// Marks the steps whose effect is already in place, judged from the real state as the run itself will judge it
        /// (so -Resume -WhatIf shows what is left). Reads only.
        /// </summary>
        private async Task MarkDoneAsync(UpgradePlan plan, ClusterProfile profile, ZduCluster cluster, CancellationToken ct)
        {
            var target = profile.TargetVersion.ToString();
            var approved = PreflightCheck.IsApproved(profile, cluster);
            foreach (var node in profile.Nodes)
            {
                var steps = plan.Steps.Where(s => s.Node == node.Name).ToList();
                var state = await _ports.Nodes.GetStateAsync(node, ct).ConfigureAwait(false);
                var preStage = steps.First(s => s.Kind == StepKind.PreStage);
                if (approved || state.InstalledVersion == target || state.StagedVersions.Contains(target))
                    preStage.Done = state.InstalledVersion == target ? $"{target} is installed" : $"{target} is staged";
                var progress = await NodeProgress.ReadAsync(_ports, target, node, ct).ConfigureAwait(false);
                foreach (var kind in NodeProgress.StepOrder.Where(progress.IsDone)) steps.First(s => s.Kind == kind).Done = progress.Why;
            }
            if (cluster.UpgradeModeEnabled || approved)
                plan.Steps.First(s => s.Kind == StepKind.EnableUpgradeMode).Done = approved ? $"every node runs {target}" : "upgrade mode is on";
            if (approved) plan.Steps.First(s => s.Kind == StepKind.Finalize).Done = "approved: upgrade mode is off and every node runs " + target;
            if (IsFinished(profile, cluster)) plan.Steps.First(s => s.Kind == StepKind.WaitStable).Done = $"the cluster is STABLE on {target}";
        }

        /// <summary>A run id: when it started (UTC) and a random suffix, e.g. 20261203T054400Z-3f9a1c. Sorts by start time.</summary>
        public static string NewRunId(DateTimeOffset startedAt) =>
            startedAt.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N").Substring(0, 6);

        private static readonly string[] TakeoverChecks = { "PreflightResuming", "PreflightAlreadyDone", "PreflightAdopting" };

        public async Task<RollingUpgradeResult> RunAsync(ClusterProfile profile, RollingUpgradeOptions options, CancellationToken ct)
        {
            var journalLock = await _ports.Journal.AcquireLockAsync(profile.Name, options.Owner ?? LockOwner.Current, _host.Warning, ct).ConfigureAwait(false);
            await using var releasesLock = journalLock.ConfigureAwait(false);
            if (journalLock.TookOverFrom is LockOwner stale)
                _host.Warning($"Took over the lock of cluster '{profile.Name}' left by {stale}, which no longer runs.");

            var started = _ports.Clock.Timestamp;
            var startedAt = _ports.Clock.UtcNow;
            var planned = await PlanAsync(profile, options.Resume, ct, options.Adopt).ConfigureAwait(false);
            var plan = planned.Plan;
            var preflight = planned.Preflight;

            // Every step goes through ShouldProcess first: -WhatIf prints them all, a "No" changes nothing.
            // A step already done is shown as such (-Resume -WhatIf), so what is left to do stands out.
            var stopAfter = new StopAfterRule(plan, options.StopAfter);
            plan.StopAfter = stopAfter.Pauses ? options.StopAfter : null;
            plan.AssignBatches(stopAfter.LaterNodes);
            var declined = false;
            foreach (var step in plan.Steps.Where(stopAfter.RunsNow))
            {
                // -MaxUnavailable above 1: each batch is announced before its first node's steps (they run at the same time).
                if (plan.MaxUnavailable > 1 && step.Kind == StepKind.TakeOut && plan.BatchOf(step.Node) is PlanBatch b && b.Nodes[0] == step.Node
                    && !_host.ShouldProcess($"cluster {profile.Name}", b.Describe(plan))) declined = true;
                if (!_host.ShouldProcess(step.Target, step.Done is null ? step.Action : $"Already done ({step.Done}), skipped: {step.Action}")) declined = true;
            }
            if (stopAfter.Pauses && !_host.ShouldProcess($"cluster {profile.Name}", stopAfter.PauseAction)) declined = true;
            if (declined) return planned;

            var adopted = preflight.AdoptedRun;
            // A takeover from the real state (-Adopt, journal lost) has no journal run: it starts one of its own.
            var fromRealState = adopted?.IsFromRealState == true;
            var runId = adopted is not null && !fromRealState ? adopted.RunId : options.RunId ?? NewRunId(startedAt);
            options.OnRunId?.Invoke(runId);
            var recorder = new StepRecorder(_ports, _host, profile.Name, runId, plan.Steps.Count, options.Hook, profile.TargetVersion.ToString());
            var target = profile.TargetVersion.ToString();
            var fromVersion = plan.FromVersion;
            await recorder.WriteAsync(adopted is null || fromRealState ? JournalKinds.RunStarted : JournalKinds.RunResumed, null, null,
                adopted is null ? $"Rolling upgrade {fromVersion} -> {target}"
                    : fromRealState ? $"Rolling upgrade {fromVersion} -> {target} adopted from the real state (no journal run of it)" : "Resumed", ct, e =>
                {
                    e.FromVersion = fromVersion;
                    e.TargetVersion = target;
                    e.NodeOrder = plan.NodeOrder.ToList();
                    e.MaxUnavailable = plan.MaxUnavailable;
                    e.Host = Environment.MachineName;
                    e.Pid = CurrentPid();
                }).ConfigureAwait(false);

            var report = new UpgradeReport
            {
                Cluster = profile.Name,
                RunId = runId,
                FromVersion = fromVersion,
                TargetVersion = target,
                Resumed = adopted is not null,
                Adopted = fromRealState,
                MaxUnavailable = plan.MaxUnavailable,
                StartedAt = startedAt,
                PreflightDuration = preflight.Duration,
                JournalPath = _ports.Journal.Describe(profile.Name),
                Nodes = plan.Nodes.Select(n => new NodeUpgradeReport { Order = n.Order, Name = n.Name, FromVersion = n.Version, ToVersion = target, Batch = n.Batch }).ToList(),
            };
            var nodeReports = report.Nodes.ToList();
            var upgrader = new NodeUpgrader(_ports, _host, profile, recorder, options.Hook);
            var ordered = plan.NodeOrder.Select(n => profile.FindNode(n)!).ToList();
            IReadOnlyList<NodeProfile>? currentNodes = null;
            try
            {
                await HookAsync(options, UpgradePhase.PreflightPassed, profile, null, "Preflight passed.", ct).ConfigureAwait(false);
                var cluster = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
                // Approved already (a killed run's approve landed): nothing before the wait for STABLE is left to do.
                var finished = PreflightCheck.IsApproved(profile, cluster);

                // 1. Pre-stage every node in parallel.
                var preStageStarted = _ports.Clock.Timestamp;
                await Task.WhenAll(ordered.Select(node => PreStageAsync(recorder, plan, profile, node, finished, ct))).ConfigureAwait(false);
                report.PreStageDuration = _ports.Clock.Since(preStageStarted);
                await HookAsync(options, UpgradePhase.PreStaged, profile, null, "Every node is pre-staged.", ct).ConfigureAwait(false);

                // 2. Upgrade mode.
                var enable = plan.Steps.First(s => s.Kind == StepKind.EnableUpgradeMode);
                cluster = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
                if (cluster.UpgradeModeEnabled || PreflightCheck.IsApproved(profile, cluster))
                    await recorder.SkipAsync(enable, cluster.UpgradeModeEnabled ? "upgrade mode is on" : $"every node runs {target}", ct).ConfigureAwait(false);
                else
                    await recorder.RunAsync(enable, EnableUpgradeModeAsync, ct).ConfigureAwait(false);
                await HookAsync(options, UpgradePhase.UpgradeModeEnabled, profile, null, "Upgrade mode is on.", ct).ConfigureAwait(false);

                // 3. Nodes, in batches of up to -MaxUnavailable (one at a time by default); the next batch only once the
                // whole batch passed its health gates and is back in rotation.
                var batchNumber = 0;
                for (var i = 0; i < ordered.Count;)
                {
                    if (stopAfter.PauseNow(nodeReports.Take(i), ordered[i].Name))
                        return await PauseAsync(recorder, report, started, stopAfter, options, profile, plan, preflight).ConfigureAwait(false);
                    var (batch, needsWork) = await NextBatchAsync(upgrader, ordered, i, plan.MaxUnavailable, stopAfter, ct).ConfigureAwait(false);
                    currentNodes = batch.Select(j => ordered[j]).ToList();
                    if (needsWork)
                    {
                        // The capacity rule, on the real state, before anything of the batch changes.
                        await CapacityRule.CheckBatchAsync(_ports, profile, currentNodes, ct).ConfigureAwait(false);
                        batchNumber++;
                        if (plan.MaxUnavailable > 1)
                            _host.Verbose($"Batch {batchNumber}: {string.Join(", ", currentNodes.Select(n => n.Name))} (-MaxUnavailable {plan.MaxUnavailable}; at least {profile.RequiredInRotation} of {profile.Nodes.Count} nodes stay ACTIVE and in rotation).");
                    }
                    // The version to restore on failure is the cluster's original one, not what the node shows now
                    // (on a resumed run a half-done node may already show the target).
                    var items = batch.Select(j => new BatchItem(ordered[j], plan.Steps.Where(s => s.Node == ordered[j].Name && s.Kind != StepKind.PreStage).ToList(),
                        j + 1, fromVersion ?? nodeReports[j].FromVersion)).ToList();
                    var done = await upgrader.UpgradeBatchAsync(items, ct).ConfigureAwait(false);
                    for (var k = 0; k < batch.Count; k++)
                    {
                        done[k].Batch = needsWork ? batchNumber : (int?)null;
                        nodeReports[batch[k]] = done[k];
                    }
                    report.Nodes = nodeReports;
                    i = batch[batch.Count - 1] + 1;
                }
                currentNodes = null;

                // 4. Finalize and wait for STABLE.
                await HookAsync(options, UpgradePhase.Finalizing, profile, null, "Every node runs " + target + "; finalizing.", ct).ConfigureAwait(false);
                var finalize = plan.Steps.First(s => s.Kind == StepKind.Finalize);
                cluster = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
                if (!cluster.UpgradeModeEnabled)
                    await recorder.SkipAsync(finalize, "upgrade mode is off", ct).ConfigureAwait(false);
                else
                    await recorder.RunAsync(finalize, c => FinalizeAsync(profile, c), ct).ConfigureAwait(false);
                var stable = plan.Steps.First(s => s.Kind == StepKind.WaitStable);
                ZduCluster? last = null;
                await recorder.RunAsync(stable, async c =>
                {
                    // After approve the finalization tasks may run (RUNNING_UPGRADE_TASKS) before STABLE; failed tasks
                    // (UPGRADE_TASKS_FAILED) will not end by waiting: halt at once with the next step.
                    last = await _ports.Clock.PollAsync(x => _ports.Cluster.GetClusterAsync(x), cl => IsFinished(profile, cl), Describe,
                        profile.Timeouts.Stable, profile.Timeouts, $"the cluster to be STABLE on {target} (finalization tasks run while it is RUNNING_UPGRADE_TASKS)", "UpgradeStableTimeout", c,
                        giveUp: cl => cl.State == ClusterState.UPGRADE_TASKS_FAILED
                            ? new BbException("UpgradeTasksFailed", BbErrorCategory.InvalidResult,
                                $"The upgrade to {target} was approved but its finalization tasks failed: the cluster is UPGRADE_TASKS_FAILED ({Describe(cl)}). Every node runs {target}. "
                                + "See atlassian-bitbucket.log on the nodes for the failed task, fix its cause, then run Resume-BbUpgradeTask (POST /rest/zdu/retryUpgrade) and Wait-BbClusterState -State STABLE.")
                            : null).ConfigureAwait(false);
                }, ct).ConfigureAwait(false);

                report.Succeeded = true;
                report.AlreadyDone = finished && adopted is not null;
                report.FinalState = last?.StateText ?? last?.State.ToString();
                Finish(report, started);
                await recorder.WriteAsync(JournalKinds.RunCompleted, null, null, report.Summary, CancellationToken.None).ConfigureAwait(false);
                _host.Progress(new OperationProgress(ProgressActivities.Run, "Rolling upgrade of " + profile.Name, "Done") { Completed = true });
                await HookAsync(options, UpgradePhase.Completed, profile, null, report.Summary, CancellationToken.None, report).ConfigureAwait(false);
                return new RollingUpgradeResult(preflight, plan, report);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await SafeJournalAsync(recorder, JournalKinds.RunCancelled,
                    "Cancelled (Ctrl+C)" + (currentNodes is null ? "" : $" during node {string.Join(", ", currentNodes.Select(n => n.Name))}")
                    + (upgrader.Interruption is string where ? ": " + where : "") + ". Run with -Resume to continue.").ConfigureAwait(false);
                throw;
            }
            catch (Exception ex)
            {
                if (ex is NodeFailedException nf)
                {
                    foreach (var r in nf.Batch.Count > 0 ? nf.Batch : new[] { nf.NodeReport })
                    {
                        var index = nodeReports.FindIndex(n => n.Name == r.Name);
                        if (index < 0) continue;
                        r.Batch ??= nodeReports[index].Batch;
                        nodeReports[index] = r;
                    }
                    report.Nodes = nodeReports;
                }
                var halted = await new RunHalt(_ports, _host).HaltAsync(profile, report, started, currentNodes?.FirstOrDefault(), ex).ConfigureAwait(false);
                await SafeJournalAsync(recorder, JournalKinds.RunHalted, halted.Message).ConfigureAwait(false);
                try
                {
                    await HookAsync(options, UpgradePhase.Halted, profile, currentNodes?.FirstOrDefault()?.Name, halted.Message, CancellationToken.None, report).ConfigureAwait(false);
                }
                catch (Exception hookError)
                {
                    _host.Warning("The Halted hook failed: " + hookError.Message);
                }
                throw halted;
            }
        }

        /// <summary>-StopAfter reached: every node this run touched is back in rotation; upgrade mode stays on for -Resume.</summary>
        private async Task<RollingUpgradeResult> PauseAsync(StepRecorder recorder, UpgradeReport report, long started, StopAfterRule rule,
            RollingUpgradeOptions options, ClusterProfile profile, UpgradePlan plan, PreflightResult preflight)
        {
            var cluster = await _ports.Cluster.GetClusterAsync(CancellationToken.None).ConfigureAwait(false);
            report.Paused = true;
            report.StopAfter = options.StopAfter;
            report.FinalState = cluster.StateText ?? cluster.State.ToString();
            report.NextStep = $"watch the upgraded node(s), then run Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} -Resume to upgrade {string.Join(", ", rule.LaterNodes)} and finalize";
            Finish(report, started);
            await recorder.WriteAsync(JournalKinds.RunPaused, null, null, report.Summary, CancellationToken.None).ConfigureAwait(false);
            _host.Progress(new OperationProgress(ProgressActivities.Run, "Rolling upgrade of " + profile.Name, "Paused") { Completed = true });
            await HookAsync(options, UpgradePhase.Paused, profile, null, report.Summary, CancellationToken.None, report).ConfigureAwait(false);
            return new RollingUpgradeResult(preflight, plan, report);
        }

        /// <summary>
        /// One node, end to end (Invoke-BbNodeUpgrade): pre-stage if needed, then take out → stop → OFFLINE → install →
        /// start → health gate → put back. The cluster must be in upgrade mode. Returns null when a step was declined
        /// (-WhatIf). On failure the node is restored and BbException UpgradeNodeFailed / UpgradeRollbackFailed says how.
        /// </summary>
        public async Task<NodeUpgradeReport?> UpgradeNodeAsync(ClusterProfile profile, string nodeName, RollingUpgradeOptions options, CancellationToken ct)
        {
            var node = profile.FindNode(nodeName) ?? throw new BbException("ProfileUnknownNode", BbErrorCategory.ObjectNotFound,
                $"The profile {profile.Source ?? profile.Name} has no node '{nodeName}'; it lists {string.Join(", ", profile.Nodes.Select(n => n.Name))}.", nodeName);
            var cluster = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
            var plan = UpgradePlanner.Create(profile, cluster);
            var steps = plan.Steps.Where(s => s.Node == node.Name).ToList();
            // The refusals come before the steps are offered: -WhatIf shows what the real run would say, not eight steps it would never take.
            if (!cluster.UpgradeModeEnabled)
                throw new BbException("UpgradeModeOff", BbErrorCategory.InvalidOperation,
                    $"Cluster {profile.BaseUrl} is {cluster.StateText ?? cluster.State.ToString()} with upgrade mode off: a node on another version could not join. "
                    + "Enable upgrade mode first (Enable-BbUpgradeMode), or let Invoke-BbRollingUpgrade do every node.", profile.Name);
            // Invoke-BbNodeUpgrade runs no preflight: the version rule is checked here, before anything changes.
            if (Rules.BitbucketVersion.TryParse(cluster.OriginalVersion ?? NodeMatcher.Find(cluster.Nodes, node)?.Version, out var original)
                && original!.WhyNotUpgradableTo(profile.TargetVersion) is string why)
                throw new BbException(PreflightCheck.VersionErrorId(original, profile.TargetVersion), BbErrorCategory.InvalidOperation,
                    $"Node {node.Name} cannot be upgraded from {original} to {profile.TargetVersion} (TargetVersion in {profile.Source ?? "the profile"}): {why} Nothing was changed.", node.Name);
            var declined = false;
            foreach (var step in steps)
                if (!_host.ShouldProcess(step.Target, step.Action)) declined = true;
            if (declined) return null;

            var journalLock = await _ports.Journal.AcquireLockAsync(profile.Name, options.Owner ?? LockOwner.Current, _host.Warning, ct).ConfigureAwait(false);
            await using var releasesLock = journalLock.ConfigureAwait(false);
            var runId = "node-" + node.Name + "-" + _ports.Clock.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            var recorder = new StepRecorder(_ports, _host, profile.Name, runId, steps.Count, options.Hook, profile.TargetVersion.ToString());
            await PreStageAsync(recorder, plan, profile, node, false, ct).ConfigureAwait(false);
            var upgrader = new NodeUpgrader(_ports, _host, profile, recorder, options.Hook);
            var from = cluster.OriginalVersion ?? NodeMatcher.Find(cluster.Nodes, node)?.Version;
            try
            {
                var report = await upgrader.UpgradeAsync(node, steps.Where(s => s.Kind != StepKind.PreStage).ToList(), 1, from, ct).ConfigureAwait(false);
                _host.Progress(new OperationProgress(ProgressActivities.Run, "Rolling upgrade of " + profile.Name, "Done") { Completed = true });
                return report;
            }
            catch (NodeFailedException nf)
            {
                throw RunHalt.NodeFailed(profile, node, nf, _ports.Journal.Describe(profile.Name));
            }
        }

        /// <summary>
        /// The nodes from <paramref name="start"/> that go together: a node with nothing left to do alone (it changes
        /// nothing), else up to <paramref name="size"/> consecutive nodes that need work, never past a -StopAfter pause.
        /// </summary>
        private static async Task<(IReadOnlyList<int> batch, bool needsWork)> NextBatchAsync(NodeUpgrader upgrader, IReadOnlyList<NodeProfile> ordered, int start, int size,
            StopAfterRule stopAfter, CancellationToken ct)
        {
            var first = await upgrader.ProgressAsync(ordered[start], ct).ConfigureAwait(false);
            if (first.AllDone) return (new[] { start }, false);
            var batch = new List<int> { start };
            for (var j = start + 1; j < ordered.Count && batch.Count < size && !stopAfter.LaterNodes.Contains(ordered[j].Name); j++)
            {
                var progress = await upgrader.ProgressAsync(ordered[j], ct).ConfigureAwait(false);
                if (progress.AllDone) break;
                batch.Add(j);
            }
            return (batch, true);
        }

        private async Task PreStageAsync(StepRecorder recorder, UpgradePlan plan, ClusterProfile profile, NodeProfile node, bool finished, CancellationToken ct)
        {
            var step = plan.Steps.First(s => s.Kind == StepKind.PreStage && s.Node == node.Name);
            var target = profile.TargetVersion.ToString();
            var state = await _ports.Nodes.GetStateAsync(node, ct).ConfigureAwait(false);
            if (finished || state.InstalledVersion == target || state.StagedVersions.Contains(target))
            {
                await recorder.SkipAsync(step, state.InstalledVersion == target ? $"{target} is installed" : $"{target} is staged", ct).ConfigureAwait(false);
                return;
            }
            await recorder.RunAsync(step, c => _ports.Nodes.PreStageAsync(node, profile.Archive, target, c), ct).ConfigureAwait(false);
        }

        private async Task EnableUpgradeModeAsync(CancellationToken ct)
        {
            ZduCluster after;
            try
            {
                after = await PostWhileNotAppliedAsync(c => _ports.Cluster.StartAsync(c), ct).ConfigureAwait(false);
            }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.InvalidState)
            {
                // 409: maybe our own earlier POST landed (crash before the journal line). Re-read and decide.
                after = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
            }
            if (!after.UpgradeModeEnabled)
                throw new BbException("UpgradeModeNotEnabled", BbErrorCategory.InvalidResult,
                    $"Upgrade mode is still off after POST /rest/zdu/start (cluster {after.StateText ?? after.State.ToString()}).");
        }

        private async Task FinalizeAsync(ClusterProfile profile, CancellationToken ct)
        {
            var timeouts = profile.Timeouts;
            await _ports.Clock.PollAsync(c => _ports.Cluster.GetClusterAsync(c), cl => cl.State == ClusterState.READY_TO_RUN_UPGRADE_TASKS || !cl.UpgradeModeEnabled,
                Describe, timeouts.Healthy, timeouts, "the cluster to be READY_TO_RUN_UPGRADE_TASKS", "UpgradeFinalizeTimeout", ct).ConfigureAwait(false);
            // Never finalize past an unfinished node: Bitbucket may report READY_TO_RUN_UPGRADE_TASKS while a profile node
            // is OFFLINE (dropped from the view); approving then would strand that node on the old version.
            var now0 = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
            var target = profile.TargetVersion.ToString();
            var unfinished = profile.Nodes.Where(n => !(NodeMatcher.Find(now0.Nodes, n) is ZduNode api && api.State == NodeState.ACTIVE && api.Version == target)).ToList();
            if (now0.UpgradeModeEnabled && unfinished.Count > 0)
                throw new BbException("UpgradeFinalizeBlocked", BbErrorCategory.InvalidOperation,
                    $"Not finalizing: node{(unfinished.Count == 1 ? "" : "s")} {string.Join(", ", unfinished.Select(n => n.Name))} of the profile "
                    + $"{(unfinished.Count == 1 ? "is" : "are")} not ACTIVE on {target} ({Describe(now0)}). Start or upgrade {(unfinished.Count == 1 ? "it" : "them")}, then resume.", profile.Name);
            try
            {
                await PostWhileNotAppliedAsync(c => _ports.Cluster.ApproveAsync(c), ct).ConfigureAwait(false);
            }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.InvalidState)
            {
                var now = await _ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
                if (now.UpgradeModeEnabled)
                    throw new BbException("UpgradeFinalizeFailed", BbErrorCategory.InvalidOperation,
                        $"Bitbucket refused to finalize (409) in state {now.StateText ?? now.State.ToString()}: {Describe(now)}.", null, ex);
            }
        }

        /// <summary>
        /// A cluster action (start, approve) that failed with a 5xx, a reset or a timeout, where re-reading the cluster proved it
        /// did NOT take effect (ZduClient attaches that reading), is safe to send again: a short burst of server errors must not
        /// halt a run. Tried up to 4 times with a growing pause; any other failure, or a still-failing action, goes up as before.
        /// </summary>
        private Task<ZduCluster> PostWhileNotAppliedAsync(Func<CancellationToken, Task<ZduCluster>> post, CancellationToken ct) =>
            _ports.Clock.Poller.RetryAsync(post, NotApplied, 4, PostPauses,
                (ex, attempt, pause) => _host.Warning($"{ex.Message} Trying again in {pause.TotalSeconds:0.#} s (attempt {attempt} of 4)."), ct);

        private static readonly PollSchedule PostPauses = new PollSchedule(TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(1), 2);

        private static bool NotApplied(Exception error) => error is ZduApiException ex && ex.Cluster is not null
            && (ex.Kind == ZduErrorKind.ServerError || ex.Kind == ZduErrorKind.Unreachable || ex.Kind == ZduErrorKind.Timeout);

        private void Finish(UpgradeReport report, long started) => Finish(_ports.Clock, report, started);

        /// <summary>When the run ended and how long it took.</summary>
        internal static void Finish(UpgradeClock clock, UpgradeReport report, long started)
        {
            report.FinishedAt = clock.UtcNow;
            report.Duration = clock.Since(started);
        }

        private async Task SafeJournalAsync(StepRecorder recorder, string kind, string message)
        {
            try
            {
                await recorder.WriteAsync(kind, null, null, message, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _host.Warning("Could not write to the journal: " + ex.Message);
            }
        }

        private static Task HookAsync(RollingUpgradeOptions options, UpgradePhase phase, ClusterProfile profile, string? node, string message, CancellationToken ct, UpgradeReport? report = null) =>
            options.Hook is null ? Task.CompletedTask
                : options.Hook(new UpgradeEvent(phase, profile.Name, node, message) { TargetVersion = profile.TargetVersion.ToString(), Report = report }, ct);

        /// <summary>Upgrade mode off, STABLE, and every live profile node on the target version.</summary>
        internal static bool IsFinished(ClusterProfile profile, ZduCluster cluster) =>
            !cluster.UpgradeModeEnabled && cluster.State == ClusterState.STABLE
            && PreflightCheck.AllProfileNodesOn(profile, cluster, profile.TargetVersion.ToString());

        private static string Describe(ZduCluster c) =>
            $"{c.StateText ?? c.State.ToString()}, upgrade mode {(c.UpgradeModeEnabled ? "on" : "off")}, nodes: "
            + string.Join(", ", c.Nodes.Select(n => $"{n.Name} {n.StateText ?? n.State.ToString()} {n.Version}"));

        private static int CurrentPid()
        {
            using var p = System.Diagnostics.Process.GetCurrentProcess();
            return p.Id;
        }
    }
}
