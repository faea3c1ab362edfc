using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>A node failed; it was restored as far as <see cref="Restored"/> says.</summary>
    internal sealed class NodeFailedException : Exception
    {
        public NodeFailedException(NodeUpgradeReport report, PlanStep step, bool restoredFully, Exception inner)
            : base(inner.Message, inner)
        {
            NodeReport = report;
            Step = step;
            RestoredFully = restoredFully;
        }

        public NodeUpgradeReport NodeReport { get; }
        public PlanStep Step { get; }
        public bool RestoredFully { get; }
        /// <summary>The node was deliberately not restored (it is still shutting down and cannot serve): left out of rotation.</summary>
        public bool LeftOut { get; set; }
        /// <summary>The failure as diagnosed by the runner (stop timeout, upgrade mode cancelled), or null.</summary>
        public DiagnosedFailure? Diagnosis => InnerException as DiagnosedFailure;
        /// <summary>-MaxUnavailable: every node of the failed node's batch, as each ended (the failed one included).</summary>
        public IReadOnlyList<NodeUpgradeReport> Batch { get; set; } = Array.Empty<NodeUpgradeReport>();
        /// <summary>-MaxUnavailable: how the other nodes of the batch were restored, or null for a batch of one.</summary>
        public string? BatchRestored { get; set; }
    }

    /// <summary>A node stopped because another node of its batch failed: it is restored like a failed node.</summary>
    internal static class BatchAborted
    {
        public const string ErrorId = "UpgradeBatchAborted";

        public static BbException Create(string node, string failed) =>
            new BbException("UpgradeBatchAborted", BbErrorCategory.OperationStopped, $"Node {node} was stopped because node {failed} of its batch failed.", node);
    }

    /// <summary>One node of a batch: what <see cref="NodeUpgrader.UpgradeAsync"/> needs for it.</summary>
    internal sealed class BatchItem
    {
        public BatchItem(NodeProfile node, IReadOnlyList<PlanStep> steps, int order, string? fromVersion)
        {
            Node = node;
            Steps = steps;
            Order = order;
            FromVersion = fromVersion;
        }

        public NodeProfile Node { get; }
        public IReadOnlyList<PlanStep> Steps { get; }
        public int Order { get; }
        public string? FromVersion { get; }
    }

    /// <summary>
    /// A node failure whose real cause the runner found out (a node that will not stop, upgrade mode cancelled by someone
    /// else): its own ErrorId and message, and what the user must do before running again.
    /// </summary>
    internal sealed class DiagnosedFailure : BbException
    {
        public DiagnosedFailure(string errorId, BbErrorCategory category, string message, string node, string remedy, Exception inner)
            : base(errorId, category, message, node, inner)
        {
            Remedy = remedy;
        }

        /// <summary>What to do first, e.g. "end the Bitbucket process on node-1 (pid 42) by hand".</summary>
        public string Remedy { get; }
    }

    /// <summary>
    /// Upgrades one node: take out of rotation → stop → OFFLINE → install → start → health gate → put back. Where to
    /// begin is decided from the node's real state, so a resumed run never repeats a step whose effect is there. On
    /// failure the node goes back to its old version and into rotation.
    /// </summary>
    internal sealed class NodeUpgrader
    {
        internal static readonly StepKind[] NodeSteps =
            { StepKind.TakeOut, StepKind.Stop, StepKind.WaitOffline, StepKind.Install, StepKind.Start, StepKind.HealthGate, StepKind.PutBack };

        private readonly HashSet<string> _gatePassed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly ClusterProfile _profile;
        private readonly StepRecorder _recorder;
        private readonly UpgradeHook? _hook;

        public NodeUpgrader(UpgradePorts ports, IOperationHost host, ClusterProfile profile, StepRecorder recorder, UpgradeHook? hook)
        {
            _ports = ports;
            _host = host;
            _profile = profile;
            _recorder = recorder;
            _hook = hook;
        }

        private readonly List<string> _interruptions = new List<string>();

        /// <summary>After cancelled nodes: where Ctrl+C left each (put back, or left out of rotation and why), for the journal.</summary>
        public string? Interruption
        {
            get { lock (_interruptions) return _interruptions.Count == 0 ? null : string.Join("; ", _interruptions); }
            private set { lock (_interruptions) { if (value is not null) _interruptions.Add(value); } }
        }

        private string Target => _profile.TargetVersion.ToString();
        private UpgradeTimeouts Timeouts => _profile.Timeouts;

        /// <summary>How many of the node's steps are done, judged from the real state (0..7).</summary>
        public Task<(int level, string why)> DoneLevelAsync(NodeProfile node, CancellationToken ct) => DoneLevelAsync(_ports, Target, node, ct);

        /// <summary>The same, for a plan (-WhatIf) that has no upgrader: reads only.</summary>
        internal static async Task<(int level, string why)> DoneLevelAsync(UpgradePorts ports, string target, NodeProfile node, CancellationToken ct)
        {
            var hostState = await ports.Nodes.GetStateAsync(node, ct).ConfigureAwait(false);
            var rotation = await ports.Rotation.GetStateAsync(node, ct).ConfigureAwait(false);
            var cluster = await ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
            var api = NodeMatcher.Find(cluster.Nodes, node);
            var apiText = api is null ? "absent from the API" : $"{api.StateText ?? api.State.ToString()} {api.Version}";
            var onTarget = hostState.InstalledVersion == target;
            var why = $"install dir {hostState.InstalledVersion ?? "?"}, process {(hostState.ProcessRunning ? "running" : "stopped")}, {rotation} at the load balancer, API: {apiText}";
            if (onTarget && hostState.ProcessRunning)
            {
                var healthy = hostState.StatusRunning && api is not null && api.State == NodeState.ACTIVE && api.Version == target;
                // The health gate is re-run unless the node is also back in rotation: it is cheap and changes nothing.
                return (healthy && rotation == RotationState.InRotation ? 7 : 5, why);
            }
            if (onTarget) return (4, why);
            if (!hostState.ProcessRunning) return (api is null || api.State == NodeState.OFFLINE ? 3 : 2, why);
            // Out of rotation with the process up is never proof that the take-out finished: a run killed after the
            // member went to maintenance, during the wait for its requests in flight, looks the same. The take-out runs
            // again; on a member already out it changes nothing and only waits for what is still in flight.
            return (0, why);
        }

        /// <summary>
        /// Upgrades the nodes of one batch at the same time (-MaxUnavailable). The first failure stops the others; then
        /// every node of the batch goes back to <see cref="BatchItem.FromVersion"/> and into rotation, those already
        /// upgraded included, and the failure is thrown with the whole batch in <see cref="NodeFailedException.Batch"/>.
        /// A batch of one is exactly <see cref="UpgradeAsync"/>.
        /// </summary>
        public async Task<IReadOnlyList<NodeUpgradeReport>> UpgradeBatchAsync(IReadOnlyList<BatchItem> batch, CancellationToken ct)
        {
            if (batch.Count == 1)
                return new[] { await UpgradeAsync(batch[0].Node, batch[0].Steps, batch[0].Order, batch[0].FromVersion, ct).ConfigureAwait(false) };

            using var abort = new CancellationTokenSource();
            string? failedFirst = null;
            var reports = new NodeUpgradeReport?[batch.Count];
            var errors = new Exception?[batch.Count];
            async Task One(int i)
            {
                var item = batch[i];
                try
                {
                    reports[i] = await UpgradeAsync(item.Node, item.Steps, item.Order, item.FromVersion, ct, abort.Token, () => failedFirst).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    errors[i] = ex;
                    if (ex is NodeFailedException nf) reports[i] = nf.NodeReport;
                    if (!(ex is OperationCanceledException) && !(ex is NodeFailedException { InnerException: BbException { ErrorId: BatchAborted.ErrorId } }))
                    {
                        if (Interlocked.CompareExchange(ref failedFirst, item.Node.Name, null) is null) abort.Cancel();
                    }
                }
            }
            await Task.WhenAll(Enumerable.Range(0, batch.Count).Select(One)).ConfigureAwait(false);

            if (failedFirst is null)
            {
                // No node failed: Ctrl+C (each node handled it) or every node upgraded.
                var cancelled = errors.FirstOrDefault(e => e is OperationCanceledException);
                if (cancelled is not null) throw cancelled;
                return reports.Select(r => r!).ToList();
            }

            // A node failed. Those that got through before the others were stopped go back too: the batch leaves the
            // cluster as it found it (every node of it on its old version and in rotation).
            var primaryIndex = Array.FindIndex(batch.ToArray(), b => b.Node.Name == failedFirst);
            await Task.WhenAll(Enumerable.Range(0, batch.Count).Where(i => reports[i]?.Outcome == NodeOutcome.Upgraded).Select(async i =>
            {
                reports[i] = await RestoreUpgradedAsync(batch[i], reports[i]!, failedFirst).ConfigureAwait(false);
            })).ConfigureAwait(false);
            var primary = errors[primaryIndex] as NodeFailedException;
            var others = Enumerable.Range(0, batch.Count).Where(i => i != primaryIndex).ToList();
            // A node the abort reached before it started (no report) was never changed.
            var othersOk = others.All(i => reports[i] is null || reports[i]!.Outcome == NodeOutcome.RolledBack || reports[i]!.Outcome == NodeOutcome.AlreadyUpgraded);
            var batchRestored = "the rest of its batch: " + string.Join("; ", others.Select(i => reports[i]?.Restored ?? $"node {batch[i].Node.Name}: {reports[i]?.Outcome.ToString() ?? "not reached"}"));
            var all = Enumerable.Range(0, batch.Count).Select(i => reports[i] ?? new NodeUpgradeReport { Order = batch[i].Order, Name = batch[i].Node.Name, FromVersion = batch[i].FromVersion, ToVersion = Target }).ToList();
            if (primary is null)
            {
                var cause = errors[primaryIndex]!;
                all[primaryIndex].Error = cause.Message;
                all[primaryIndex].Restored = $"nothing: node {batch[primaryIndex].Node.Name} was not changed";
                throw new NodeFailedException(all[primaryIndex], batch[primaryIndex].Steps.First(s => s.Kind == StepKind.TakeOut), othersOk, cause)
                {
                    Batch = all,
                    BatchRestored = batchRestored,
                };
            }
            throw new NodeFailedException(primary.NodeReport, primary.Step, primary.RestoredFully && othersOk, primary.InnerException!)
            {
                LeftOut = primary.LeftOut,
                Batch = all,
                BatchRestored = batchRestored,
            };
        }

        /// <summary>A node of a failed batch that had been upgraded: out of rotation, back to its old version, back in.</summary>
        private async Task<NodeUpgradeReport> RestoreUpgradedAsync(BatchItem item, NodeUpgradeReport report, string failed)
        {
            var node = item.Node;
            var cause = BatchAborted.Create(node.Name, failed);
            report.Error = cause.Message;
            try
            {
                using var cts = new CancellationTokenSource(Timeouts.Drain + Timeouts.Healthy);
                await SafeWriteAsync(JournalKinds.RollbackBegin, node, $"node {failed} of the batch failed: taking {node.Name} out again to restore {item.FromVersion}").ConfigureAwait(false);
                await _ports.Rotation.TakeOutAsync(node, Timeouts.Drain, cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                report.Restored = $"node {node.Name} stays on {Target} in rotation: it could not be taken out again to restore {item.FromVersion} ({ex.Message})";
                report.Outcome = NodeOutcome.Failed;
                await SafeWriteAsync(JournalKinds.RollbackFailed, node, report.Restored).ConfigureAwait(false);
                return report;
            }
            var (restored, fully, _) = await RestoreAsync(node, item.Steps.First(s => s.Kind == StepKind.HealthGate), item.FromVersion, cause).ConfigureAwait(false);
            report.Restored = restored;
            report.Outcome = fully ? NodeOutcome.RolledBack : NodeOutcome.Failed;
            return report;
        }

        public async Task<NodeUpgradeReport> UpgradeAsync(NodeProfile node, IReadOnlyList<PlanStep> steps, int order, string? fromVersion, CancellationToken ct) =>
            await UpgradeAsync(node, steps, order, fromVersion, ct, CancellationToken.None, () => null).ConfigureAwait(false);

        private async Task<NodeUpgradeReport> UpgradeAsync(NodeProfile node, IReadOnlyList<PlanStep> steps, int order, string? fromVersion, CancellationToken userCt,
            CancellationToken abort, Func<string?> failedSibling)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(userCt, abort);
            var ct = linked.Token;
            var report = new NodeUpgradeReport { Order = order, Name = node.Name, FromVersion = fromVersion, ToVersion = Target };
            var (level, why) = await DoneLevelAsync(node, ct).ConfigureAwait(false);
            if (level == NodeSteps.Length)
            {
                foreach (var s in steps) await _recorder.SkipAsync(s, why, ct).ConfigureAwait(false);
                report.Outcome = NodeOutcome.AlreadyUpgraded;
                _host.Verbose($"Node {node.Name} already runs {Target} and is in rotation.");
                return report;
            }

            var nodeStarted = _ports.Clock.Timestamp;
            long? outSince = null;
            var spent = TimeSpan.Zero;
            PlanStep? current = null;
            try
            {
                await HookAsync(UpgradePhase.NodeStarting, node, $"Upgrading node {node.Name} ({order}) to {Target}.", ct).ConfigureAwait(false);
                for (var i = 0; i < NodeSteps.Length; i++)
                {
                    var step = steps.First(s => s.Kind == NodeSteps[i]);
                    if (i < level)
                    {
                        await _recorder.SkipAsync(step, why, ct).ConfigureAwait(false);
                        if (step.Kind == StepKind.TakeOut) outSince = _ports.Clock.Timestamp;
                        continue;
                    }
                    current = step;
                    var took = await _recorder.RunAsync(step, c => RunStepAsync(node, step.Kind, c), ct).ConfigureAwait(false);
                    spent += took;
                    switch (step.Kind)
                    {
                        case StepKind.TakeOut:
                            report.DrainTime = took;
                            outSince = _ports.Clock.Timestamp;
                            await HookAsync(UpgradePhase.NodeOutOfRotation, node, $"Node {node.Name} is out of rotation.", ct).ConfigureAwait(false);
                            break;
                        case StepKind.Stop:
                        case StepKind.WaitOffline:
                            report.StopTime = (report.StopTime ?? TimeSpan.Zero) + took;
                            break;
                        case StepKind.Install:
                            report.InstallTime = took;
                            break;
                        case StepKind.Start:
                        case StepKind.HealthGate:
                            report.StartTime = (report.StartTime ?? TimeSpan.Zero) + took;
                            if (step.Kind == StepKind.HealthGate)
                                await HookAsync(UpgradePhase.NodeHealthy, node, $"Node {node.Name} passed the health gate on {Target}.", ct).ConfigureAwait(false);
                            break;
                        case StepKind.PutBack:
                            report.PutBackTime = took;
                            break;
                    }
                }
                if (outSince is long since) report.OutOfRotation = _ports.Clock.Since(since);
                report.Total = _ports.Clock.Since(nodeStarted);
                var overhead = report.Total.Value - spent;
                report.Overhead = overhead < TimeSpan.Zero ? TimeSpan.Zero : overhead;
                report.Outcome = NodeOutcome.Upgraded;
                await HookAsync(UpgradePhase.NodeUpgraded, node, $"Node {node.Name} runs {Target} and is back in rotation.", ct).ConfigureAwait(false);
                return report;
            }
            catch (OperationCanceledException) when (userCt.IsCancellationRequested)
            {
                report.Outcome = NodeOutcome.Interrupted;
                report.Error = "Cancelled (Ctrl+C).";
                report.Restored = await PutBackIfStillServingAsync(node, current).ConfigureAwait(false);
                throw;
            }
            catch (Exception ex0) when (report.Outcome != NodeOutcome.Upgraded)
            {
                var failedStep = current ?? steps.First(s => s.Kind == StepKind.TakeOut);
                var ex = ex0 is OperationCanceledException && abort.IsCancellationRequested && failedSibling() is string sibling
                    ? BatchAborted.Create(node.Name, sibling)
                    : await DiagnoseAsync(node, failedStep, ex0).ConfigureAwait(false);
                report.Error = $"Step '{failedStep.Key}' failed: {ex.Message}";
                var (restored, fully, leftOut) = await RestoreAsync(node, failedStep, report.FromVersion, ex).ConfigureAwait(false);
                report.Restored = restored;
                report.Outcome = fully ? NodeOutcome.RolledBack : NodeOutcome.Failed;
                if (outSince is long since) report.OutOfRotation = _ports.Clock.Since(since);
                report.Total = _ports.Clock.Since(nodeStarted);
                try
                {
                    await HookAsync(UpgradePhase.NodeFailed, node, $"{report.Error} Restored: {restored}.", CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception hookError)
                {
                    _host.Warning($"The NodeFailed hook failed: {hookError.Message}");
                }
                throw new NodeFailedException(report, failedStep, fully, ex) { LeftOut = leftOut };
            }
        }

        private Task HookAsync(UpgradePhase phase, NodeProfile node, string message, CancellationToken ct) =>
            _hook is null ? Task.CompletedTask : _hook(new UpgradeEvent(phase, _profile.Name, node.Name, message) { TargetVersion = Target }, ct);

        private async Task RunStepAsync(NodeProfile node, StepKind kind, CancellationToken ct)
        {
            switch (kind)
            {
                case StepKind.TakeOut:
                    await _ports.Rotation.TakeOutAsync(node, Timeouts.Drain, ct).ConfigureAwait(false);
                    var state = await _ports.Rotation.GetStateAsync(node, ct).ConfigureAwait(false);
                    if (state != RotationState.OutOfRotation)
                        throw new BbException("UpgradeRotationNotVerified", BbErrorCategory.InvalidResult,
                            $"After taking node {node.Name} out of rotation the load balancer reports it {state}.", node.Name);
                    break;
                case StepKind.Stop:
                    await _ports.Nodes.StopAsync(node, ct).ConfigureAwait(false);
                    await _ports.Nodes.WaitProcessGoneAsync(node, Timeouts.Stop, ct).ConfigureAwait(false);
                    break;
                case StepKind.WaitOffline:
                    await _ports.Clock.PollAsync(c => _ports.Cluster.GetClusterAsync(c), cl => IsOffline(NodeMatcher.Find(cl.Nodes, node)),
                        cl => DescribeApi(NodeMatcher.Find(cl.Nodes, node)), Timeouts.Offline, Timeouts,
                        $"the API to show node {node.Name} OFFLINE", "UpgradeOfflineTimeout", ct, Waiting(node, "OFFLINE")).ConfigureAwait(false);
                    break;
                case StepKind.Install:
                    await _ports.Nodes.InstallAsync(node, Target, ct).ConfigureAwait(false);
                    var installed = await _ports.Nodes.GetStateAsync(node, ct).ConfigureAwait(false);
                    if (installed.InstalledVersion != Target)
                        throw new BbException("UpgradeInstallNotVerified", BbErrorCategory.InvalidResult,
                            $"After installing {Target} on node {node.Name} its current install dir is {installed.InstalledVersion ?? "unknown"}.", node.Name);
                    break;
                case StepKind.Start:
                    await _ports.Nodes.StartAsync(node, ct).ConfigureAwait(false);
                    break;
                case StepKind.HealthGate:
                    await HealthGateAsync(node, Target, ct).ConfigureAwait(false);
                    lock (_gatePassed) _gatePassed.Add(node.Name);
                    break;
                case StepKind.PutBack:
                    // Only a gate this run passed lets the balancer skip its own checks (a -Resume that starts at
                    // put-back has not seen the node healthy itself).
                    bool gated;
                    lock (_gatePassed) gated = _gatePassed.Remove(node.Name);
                    await _ports.Rotation.PutBackAsync(node, Timeouts.Healthy, ct, healthGatePassed: gated).ConfigureAwait(false);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a node step.");
            }
        }

        /// <summary>/status RUNNING, the API shows the node ACTIVE on <paramref name="version"/>, and another node sees it so too.</summary>
        internal async Task HealthGateAsync(NodeProfile node, string version, CancellationToken ct)
        {
            await WaitStatusRunningOrApiErrorAsync(node, ct).ConfigureAwait(false);
            await _ports.Clock.PollAsync(c => _ports.Cluster.GetClusterAsync(c), cl => IsActiveOn(NodeMatcher.Find(cl.Nodes, node), version),
                cl => DescribeApi(NodeMatcher.Find(cl.Nodes, node)), Timeouts.Healthy, Timeouts,
                $"the API to show node {node.Name} ACTIVE on {version}", "UpgradeHealthTimeout", ct, Waiting(node, "ACTIVE on " + version),
                cl => ApiError(node, NodeMatcher.Find(cl.Nodes, node))).ConfigureAwait(false);
            var witnesses = _profile.Nodes.Where(n => !ReferenceEquals(n, node)).ToList();
            if (witnesses.Count == 0) return;
            await _ports.Clock.PollAsync(c => AnyOtherViewAsync(witnesses, c), cl => IsActiveOn(NodeMatcher.Find(cl.Nodes, node), version),
                cl => DescribeApi(NodeMatcher.Find(cl.Nodes, node)), Timeouts.Healthy, Timeouts,
                $"another node ({string.Join(" or ", witnesses.Select(w => w.Name))}) to see node {node.Name} ACTIVE on {version}", "UpgradeHealthTimeout", ct,
                giveUp: cl => ApiError(node, NodeMatcher.Find(cl.Nodes, node))).ConfigureAwait(false);
        }

        /// <summary>
        /// The gate's first check: the node's own /status says RUNNING. While it does not, the API is read too: a node the
        /// API shows in ERROR fails the gate at once (its /status may never say ERROR), as does a /status answer that
        /// waiting will not change (ERROR, FIRST_RUN, an untrusted certificate).
        /// </summary>
        private async Task WaitStatusRunningOrApiErrorAsync(NodeProfile node, CancellationToken ct)
        {
            var first = true;
            await _ports.Clock.PollAsync(async c =>
            {
                try
                {
                    await _ports.Nodes.WaitStatusRunningAsync(node, TimeSpan.Zero, c).ConfigureAwait(false);
                    return (true, "RUNNING", (Exception?)null);
                }
                catch (BbException ex) when (ex.ErrorId == "NodeStartTimeout")
                {
                    if (first) { first = false; return (false, "not RUNNING yet", null); }
                    ZduNode? api = null;
                    try
                    {
                        api = NodeMatcher.Find((await _ports.Cluster.GetClusterAsync(c).ConfigureAwait(false)).Nodes, node);
                    }
                    catch (Exception readError) when (!(readError is OperationCanceledException))
                    {
                        // The API is only a second opinion here; /status decides.
                    }
                    return (false, ex.Message + (api is null ? "" : $"; the API shows it {DescribeApi(api)}"), ApiError(node, api));
                }
                catch (BbException ex)
                {
                    return (false, ex.Message, ex);
                }
            }, r => r.Item1, r => r.Item2, Timeouts.Start, Timeouts, $"node {node.Name}'s /status to say RUNNING", "NodeStartTimeout", ct,
                giveUp: r => r.Item3).ConfigureAwait(false);
        }

        private static Exception? ApiError(NodeProfile node, ZduNode? api) =>
            api is not null && api.State == NodeState.ERROR
                ? new BbException("UpgradeNodeError", BbErrorCategory.InvalidResult,
                    $"The cluster API shows node {node.Name} in ERROR on {api.Version ?? "no version"}: Bitbucket failed to start there, and waiting will not change that. "
                    + $"See the node's log (BITBUCKET_HOME/log/atlassian-bitbucket.log), fix it and resume with -Resume, or stop the node (it is then OFFLINE).", node.Name)
                : null;

        /// <summary>The cluster as the first other node that answers sees it (one may be down on a resumed run).</summary>
        private async Task<ZduCluster> AnyOtherViewAsync(IReadOnlyList<NodeProfile> witnesses, CancellationToken ct)
        {
            Exception? last = null;
            foreach (var w in witnesses)
            {
                try
                {
                    return await _ports.NodeApi(w).GetClusterAsync(ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException))
                {
                    last = ex;
                }
            }
            throw last!;
        }

        /// <summary>
        /// Finds out what a failed step really means: a node that did not stop in time is still shutting down (its pid and
        /// API state are named, in the profile's terms); a failure while upgrade mode is off means someone cancelled it.
        /// </summary>
        private async Task<Exception> DiagnoseAsync(NodeProfile node, PlanStep failedStep, Exception ex)
        {
            if (ex is DiagnosedFailure) return ex;
            using var cts = new CancellationTokenSource(Timeouts.Healthy);
            NodeHostState? host = null;
            ZduCluster? cluster = null;
            try
            {
                if (failedStep.Kind == StepKind.Stop && ex is BbException { ErrorId: "NodeStopTimeout" })
                    host = await _ports.Nodes.GetStateAsync(node, cts.Token).ConfigureAwait(false);
                cluster = await _ports.Cluster.GetClusterAsync(cts.Token).ConfigureAwait(false);
            }
            catch (Exception readError)
            {
                _host.Verbose($"Could not read node {node.Name} or the cluster after the failure: {readError.Message}");
            }
            var api = cluster is null ? null : NodeMatcher.Find(cluster.Nodes, node);
            if (host is not null && host.ProcessRunning)
            {
                var pid = host.ProcessId is int p ? $"pid {p}" : "pid unknown";
                var seconds = Timeouts.Stop.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
                return new DiagnosedFailure("UpgradeNodeStopTimeout", BbErrorCategory.OperationTimeout,
                    $"Node {node.Name} did not stop within {seconds} s (Timeouts.StopSeconds): Bitbucket is still running ({pid}{(cluster is null ? "" : ", the API shows it " + DescribeApi(api))}).",
                    node.Name,
                    $"end the Bitbucket process on {node.Name} by hand ({pid} on {(string.Equals(node.RemotingTarget, "local", StringComparison.OrdinalIgnoreCase) ? "this machine" : node.RemotingTarget)}), or raise Timeouts.StopSeconds in the profile if it only needs longer to stop",
                    ex);
            }
            if (cluster is not null && !cluster.UpgradeModeEnabled)
            {
                var joining = failedStep.Kind == StepKind.Start || failedStep.Kind == StepKind.HealthGate;
                return new DiagnosedFailure("UpgradeModeCancelled", BbErrorCategory.InvalidOperation,
                    $"Upgrade mode was cancelled by someone else during the run: the cluster is {cluster.StateText ?? cluster.State.ToString()} with upgrade mode off"
                    + (joining ? $", so node {node.Name} on {Target} could not join it (step '{failedStep.Key}': {FirstSentence(ex.Message)})." : $" (step '{failedStep.Key}' failed: {FirstSentence(ex.Message)})."),
                    node.Name,
                    "find out who cancelled upgrade mode and why",
                    ex);
            }
            return ex;
        }

        /// <summary>The evidence without the step's own advice (which the diagnosis replaces).</summary>
        private static string FirstSentence(string message)
        {
            var end = message.IndexOf(". ", StringComparison.Ordinal);
            return (end < 0 ? message : message.Substring(0, end)).TrimEnd('.');
        }

        /// <summary>
        /// Puts the node back to its old version and into rotation. Returns what was done, whether it fully worked, and
        /// whether the node was left out of rotation on purpose (still shutting down: it cannot serve).
        /// </summary>
        private async Task<(string restored, bool fully, bool leftOut)> RestoreAsync(NodeProfile node, PlanStep failedStep, string? previousVersion, Exception cause)
        {
            // Restoring must finish even though the run is halting: its own deadline, not the run's token.
            using var cts = new CancellationTokenSource(Timeouts.Stop + Timeouts.Start + Timeouts.Healthy + Timeouts.Healthy);
            var ct = cts.Token;
            if (failedStep.Kind == StepKind.PutBack)
                return ($"nothing: node {node.Name} runs {Target} and passed the health gate, but could not be put back into rotation; it stays out (the other nodes serve) until the load balancer answers again: -Resume puts it back and carries on (or add it back at the load balancer by hand)", false, false);
            if (cause is DiagnosedFailure { ErrorId: "UpgradeNodeStopTimeout" })
            {
                // Stopping it again would only wait another timeout, and a node that is shutting down takes no new work.
                var text = $"It was left OUT of rotation on purpose: a node that is shutting down cannot serve users; the other nodes serve";
                await SafeWriteAsync(JournalKinds.RollbackFailed, node, $"not restored on purpose: node {node.Name} is still shutting down and stays out of rotation").ConfigureAwait(false);
                return (text, false, true);
            }
            await SafeWriteAsync(JournalKinds.RollbackBegin, node, $"restoring after: {cause.Message}").ConfigureAwait(false);
            var done = new List<string>();
            try
            {
                var state = await _ports.Nodes.GetStateAsync(node, ct).ConfigureAwait(false);
                var changedVersion = state.InstalledVersion is not null && state.InstalledVersion != previousVersion;
                if (previousVersion is null)
                    throw new BbException("UpgradeRollbackFailed", BbErrorCategory.InvalidOperation, "the node's previous version is unknown");
                if (changedVersion || !state.ProcessRunning || !state.StatusRunning)
                {
                    if (state.ProcessRunning)
                    {
                        await _ports.Nodes.StopAsync(node, ct).ConfigureAwait(false);
                        await _ports.Nodes.WaitProcessGoneAsync(node, Timeouts.Stop, ct).ConfigureAwait(false);
                        done.Add("stopped");
                    }
                    if (changedVersion)
                    {
                        await _ports.Nodes.RollBackAsync(node, previousVersion, ct).ConfigureAwait(false);
                        done.Add($"switched back to {previousVersion}");
                    }
                    await _ports.Nodes.StartAsync(node, ct).ConfigureAwait(false);
                    try
                    {
                        await HealthGateAsync(node, previousVersion, ct).ConfigureAwait(false);
                        done.Add($"started and healthy on {previousVersion}");
                    }
                    catch (ZduApiException api) when (UpgradeClock.CredentialsRefused(api))
                    {
                        // The node's own /status said RUNNING (the gate's first check) on the version the rest of the cluster
                        // runs; only the API's view cannot be read with a refused credential. Keeping a serving node out
                        // of rotation would cost capacity for nothing, so it goes back, and the message says so.
                        done.Add($"started and RUNNING on {previousVersion} by its own /status (the API refused the credentials, so the cluster's view was not checked)");
                    }
                }
                await _ports.Rotation.PutBackAsync(node, Timeouts.Healthy, ct).ConfigureAwait(false);
                done.Add("back in rotation");
                var text = $"node {node.Name} runs {previousVersion} again and is back in rotation ({string.Join(", ", done)})";
                await SafeWriteAsync(JournalKinds.RollbackDone, node, text).ConfigureAwait(false);
                return (text, true, false);
            }
            catch (Exception ex)
            {
                var text = $"restoring node {node.Name} FAILED"
                    + (done.Count == 0 ? "" : $" after it was {string.Join(", ", done)}")
                    + $": {ex.Message} The node may be stopped or out of rotation: check it by hand";
                await SafeWriteAsync(JournalKinds.RollbackFailed, node, text).ConfigureAwait(false);
                return (text, false, false);
            }
        }

        /// <summary>
        /// After Ctrl+C: a node still running its old version (or one that passed the health gate, interrupted while being
        /// put back) is put back so we never leave it out by ourselves. A node on the new version that has not passed the
        /// health gate stays out: -Resume runs the gate first.
        /// </summary>
        private async Task<string?> PutBackIfStillServingAsync(NodeProfile node, PlanStep? interrupted)
        {
            using var cts = new CancellationTokenSource(Timeouts.Healthy);
            try
            {
                var state = await _ports.Nodes.GetStateAsync(node, cts.Token).ConfigureAwait(false);
                if (state.ProcessRunning && state.InstalledVersion == Target && interrupted?.Kind != StepKind.PutBack
                    && await _ports.Rotation.GetStateAsync(node, cts.Token).ConfigureAwait(false) != RotationState.InRotation)
                {
                    Interruption = $"node {node.Name} runs {Target} but was not through the health gate, so it stays out of rotation until -Resume finishes it";
                    _host.Warning($"Node {node.Name} was interrupted before passing the health gate on {Target}: it stays out of rotation. Run with -Resume to finish it.");
                    return null;
                }
                if (!state.ProcessRunning || !state.StatusRunning)
                {
                    Interruption = $"node {node.Name} was {(state.ProcessRunning ? "starting" : "stopped")} (install dir {state.InstalledVersion ?? "unknown"}) and stays out of rotation until -Resume finishes it";
                    _host.Warning($"Node {node.Name} was interrupted while {(state.ProcessRunning ? "starting" : "stopped")}: it stays out of rotation. Run with -Resume to finish it.");
                    return null;
                }
                if (await _ports.Rotation.GetStateAsync(node, cts.Token).ConfigureAwait(false) == RotationState.InRotation)
                {
                    Interruption = $"node {node.Name} is in rotation, untouched";
                    return null;
                }
                await _ports.Rotation.PutBackAsync(node, Timeouts.Healthy, cts.Token).ConfigureAwait(false);
                await SafeWriteAsync(JournalKinds.RollbackDone, node, $"interrupted: node {node.Name} put back into rotation").ConfigureAwait(false);
                Interruption = $"node {node.Name} still ran {state.InstalledVersion} and was put back into rotation";
                return $"node {node.Name} put back into rotation";
            }
            catch (Exception ex)
            {
                Interruption = $"node {node.Name} could NOT be put back into rotation ({ex.Message}): check it at the load balancer";
                _host.Warning($"Could not put node {node.Name} back into rotation after the interruption: {ex.Message}");
                return null;
            }
        }

        private async Task SafeWriteAsync(string kind, NodeProfile node, string message)
        {
            try
            {
                await _recorder.WriteAsync(kind, node.Name + "/rollback", node.Name, message, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _host.Warning($"Could not write to the journal: {ex.Message}");
            }
        }

        /// <summary>Live progress while a wait polls: what the API shows for the node now.</summary>
        private Action<ZduCluster> Waiting(NodeProfile node, string wanted) => cl =>
            _host.Progress(new OperationProgress(ProgressActivities.NodeWait, $"Waiting for {node.Name} to be {wanted}", "API: " + DescribeApi(NodeMatcher.Find(cl.Nodes, node)))
            {
                ParentActivityId = ProgressActivities.Run,
            });

        private static bool IsOffline(ZduNode? n) => n is null || n.State == NodeState.OFFLINE;
        private static bool IsActiveOn(ZduNode? n, string version) => n is not null && n.State == NodeState.ACTIVE && n.Version == version;
        private static string DescribeApi(ZduNode? n) => n is null ? "node absent" : $"{n.StateText ?? n.State.ToString()} on {n.Version ?? "no version"}";
    }
}
