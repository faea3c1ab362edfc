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
    /// Upgrades one node: take out of rotation → stop → OFFLINE → install → start → health gate → put back. Where to
    /// begin is decided from the node's real state (<see cref="NodeProgress"/>), so a resumed run never repeats a step
    /// whose effect is there. On failure the failure is named (<see cref="NodeFailureDiagnosis"/>) and the node goes back
    /// to its old version and into rotation (<see cref="NodeRestore"/>).
    /// </summary>
    internal sealed class NodeUpgrader
    {
        private readonly HashSet<string> _gatePassed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly ClusterProfile _profile;
        private readonly StepRecorder _recorder;
        private readonly UpgradeHook? _hook;
        private readonly NodeFailureDiagnosis _diagnosis;
        private readonly NodeRestore _restore;
        private readonly NodeInterruption _interruption;

        public NodeUpgrader(UpgradePorts ports, IOperationHost host, ClusterProfile profile, StepRecorder recorder, UpgradeHook? hook)
        {
            _ports = ports;
            _host = host;
            _profile = profile;
            _recorder = recorder;
            _hook = hook;
            _diagnosis = new NodeFailureDiagnosis(ports, host, profile);
            _restore = new NodeRestore(ports, host, profile, recorder, HealthGateAsync);
            _interruption = new NodeInterruption(ports, host, profile, _restore);
        }

        /// <summary>After cancelled nodes: where Ctrl+C left each (put back, or left out of rotation and why), for the journal.</summary>
        public string? Interruption => _interruption.Summary;

        private string Target => _profile.TargetVersion.ToString();
        private UpgradeTimeouts Timeouts => _profile.Timeouts;

        /// <summary>Where the node's upgrade stands, judged from the real state.</summary>
        public Task<NodeProgress> ProgressAsync(NodeProfile node, CancellationToken ct) => NodeProgress.ReadAsync(_ports, Target, node, ct);

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

            throw await _restore.RestoreBatchAsync(batch, reports, errors, failedFirst).ConfigureAwait(false);
        }

        public async Task<NodeUpgradeReport> UpgradeAsync(NodeProfile node, IReadOnlyList<PlanStep> steps, int order, string? fromVersion, CancellationToken ct) =>
            await UpgradeAsync(node, steps, order, fromVersion, ct, CancellationToken.None, () => null).ConfigureAwait(false);

        private async Task<NodeUpgradeReport> UpgradeAsync(NodeProfile node, IReadOnlyList<PlanStep> steps, int order, string? fromVersion, CancellationToken userCt,
            CancellationToken abort, Func<string?> failedSibling)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(userCt, abort);
            var ct = linked.Token;
            var report = new NodeUpgradeReport { Order = order, Name = node.Name, FromVersion = fromVersion, ToVersion = Target };
            var progress = await ProgressAsync(node, ct).ConfigureAwait(false);
            if (progress.AllDone)
            {
                foreach (var s in steps) await _recorder.SkipAsync(s, progress.Why, ct).ConfigureAwait(false);
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
                foreach (var kind in NodeProgress.StepOrder)
                {
                    var step = steps.First(s => s.Kind == kind);
                    if (progress.IsDone(kind))
                    {
                        await _recorder.SkipAsync(step, progress.Why, ct).ConfigureAwait(false);
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
                report.Restored = await _interruption.PutBackIfStillServingAsync(node, current).ConfigureAwait(false);
                throw;
            }
            catch (Exception ex0) when (report.Outcome != NodeOutcome.Upgraded)
            {
                var failedStep = current ?? steps.First(s => s.Kind == StepKind.TakeOut);
                var ex = ex0 is OperationCanceledException && abort.IsCancellationRequested && failedSibling() is string sibling
                    ? BatchAborted.Create(node.Name, sibling)
                    : await _diagnosis.DiagnoseAsync(node, failedStep, ex0).ConfigureAwait(false);
                report.Error = $"Step '{failedStep.Key}' failed: {ex.Message}";
                var (restored, fully, leftOut) = await _restore.RestoreAsync(node, failedStep, report.FromVersion, ex).ConfigureAwait(false);
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

        /// <summary>Live progress while a wait polls: what the API shows for the node now.</summary>
        private Action<ZduCluster> Waiting(NodeProfile node, string wanted) => cl =>
            _host.Progress(new OperationProgress(ProgressActivities.NodeWait, $"Waiting for {node.Name} to be {wanted}", "API: " + DescribeApi(NodeMatcher.Find(cl.Nodes, node)))
            {
                ParentActivityId = ProgressActivities.Run,
            });

        private static bool IsOffline(ZduNode? n) => n is null || n.State == NodeState.OFFLINE;
        private static bool IsActiveOn(ZduNode? n, string version) => n is not null && n.State == NodeState.ACTIVE && n.Version == version;
        internal static string DescribeApi(ZduNode? n) => n is null ? "node absent" : $"{n.StateText ?? n.State.ToString()} on {n.Version ?? "no version"}";
    }
}
