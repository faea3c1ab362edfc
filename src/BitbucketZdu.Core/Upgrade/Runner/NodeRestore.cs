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

    /// <summary>
    /// What happens to a node that failed: it goes back to its old version and into rotation (or is left out on purpose
    /// when it cannot serve), and under -MaxUnavailable the rest of its batch goes back with it. Each restore has its own
    /// deadline, not the run's token, and is journaled (rollback-begin / -done / -failed).
    /// </summary>
    internal sealed class NodeRestore
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly ClusterProfile _profile;
        private readonly StepRecorder _recorder;
        private readonly Func<NodeProfile, string, CancellationToken, Task> _healthGate;

        /// <param name="healthGate">The upgrader's health gate, run on the restored version.</param>
        public NodeRestore(UpgradePorts ports, IOperationHost host, ClusterProfile profile, StepRecorder recorder, Func<NodeProfile, string, CancellationToken, Task> healthGate)
        {
            _ports = ports;
            _host = host;
            _profile = profile;
            _recorder = recorder;
            _healthGate = healthGate;
        }

        private string Target => _profile.TargetVersion.ToString();
        private UpgradeTimeouts Timeouts => _profile.Timeouts;

        /// <summary>
        /// Puts the node back to its old version and into rotation. Returns what was done, whether it fully worked, and
        /// whether the node was left out of rotation on purpose (still shutting down: it cannot serve).
        /// </summary>
        public async Task<(string restored, bool fully, bool leftOut)> RestoreAsync(NodeProfile node, PlanStep failedStep, string? previousVersion, Exception cause)
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
                await WriteRollbackAsync(JournalKinds.RollbackFailed, node, $"not restored on purpose: node {node.Name} is still shutting down and stays out of rotation").ConfigureAwait(false);
                return (text, false, true);
            }
            await WriteRollbackAsync(JournalKinds.RollbackBegin, node, $"restoring after: {cause.Message}").ConfigureAwait(false);
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
                        await _healthGate(node, previousVersion, ct).ConfigureAwait(false);
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
                await WriteRollbackAsync(JournalKinds.RollbackDone, node, text).ConfigureAwait(false);
                return (text, true, false);
            }
            catch (Exception ex)
            {
                var text = $"restoring node {node.Name} FAILED"
                    + (done.Count == 0 ? "" : $" after it was {string.Join(", ", done)}")
                    + $": {ex.Message} The node may be stopped or out of rotation: check it by hand";
                await WriteRollbackAsync(JournalKinds.RollbackFailed, node, text).ConfigureAwait(false);
                return (text, false, false);
            }
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
                await WriteRollbackAsync(JournalKinds.RollbackBegin, node, $"node {failed} of the batch failed: taking {node.Name} out again to restore {item.FromVersion}").ConfigureAwait(false);
                await _ports.Rotation.TakeOutAsync(node, Timeouts.Drain, cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                report.Restored = $"node {node.Name} stays on {Target} in rotation: it could not be taken out again to restore {item.FromVersion} ({ex.Message})";
                report.Outcome = NodeOutcome.Failed;
                await WriteRollbackAsync(JournalKinds.RollbackFailed, node, report.Restored).ConfigureAwait(false);
                return report;
            }
            var (restored, fully, _) = await RestoreAsync(node, item.Steps.First(s => s.Kind == StepKind.HealthGate), item.FromVersion, cause).ConfigureAwait(false);
            report.Restored = restored;
            report.Outcome = fully ? NodeOutcome.RolledBack : NodeOutcome.Failed;
            return report;
        }

        /// <summary>
        /// -MaxUnavailable: a node of the batch failed. Those that got through before the others were stopped go back too
        /// (<see cref="RestoreUpgradedAsync"/>); returns the failure to throw, with the whole batch in
        /// <see cref="NodeFailedException.Batch"/> and how the rest of it was restored.
        /// </summary>
        public async Task<NodeFailedException> RestoreBatchAsync(IReadOnlyList<BatchItem> batch, NodeUpgradeReport?[] reports, Exception?[] errors, string failedFirst)
        {
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
                return new NodeFailedException(all[primaryIndex], batch[primaryIndex].Steps.First(s => s.Kind == StepKind.TakeOut), othersOk, cause)
                {
                    Batch = all,
                    BatchRestored = batchRestored,
                };
            }
            return new NodeFailedException(primary.NodeReport, primary.Step, primary.RestoredFully && othersOk, primary.InnerException!)
            {
                LeftOut = primary.LeftOut,
                Batch = all,
                BatchRestored = batchRestored,
            };
        }

        /// <summary>A rollback line in the journal; a journal that cannot be written is only a warning (the restore goes on).</summary>
        internal async Task WriteRollbackAsync(string kind, NodeProfile node, string message)
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
    }
}
