using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>
    /// How a run stops on a failure, after the failed node was restored (<see cref="NodeRestore"/>): the ErrorId
    /// (UpgradeNodeFailed, UpgradeRollbackFailed, or the diagnosis's own), what was restored, the cluster's state and
    /// the report's next step. The journal lets -Resume continue.
    /// </summary>
    internal sealed class RunHalt
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;

        public RunHalt(UpgradePorts ports, IOperationHost host)
        {
            _ports = ports;
            _host = host;
        }

        /// <summary>Invoke-BbRollingUpgrade: the report is completed as failed and the run's error is returned, to throw.</summary>
        public async Task<UpgradeHaltedException> HaltAsync(ClusterProfile profile, UpgradeReport report, long started, NodeProfile? node, Exception cause)
        {
            ZduCluster? cluster = null;
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                cluster = await _ports.Cluster.GetClusterAsync(cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _host.Warning("Could not read the cluster state after the failure: " + ex.Message);
            }
            var target = profile.TargetVersion.ToString();
            var onTarget = cluster?.Nodes.Count(n => n.State != NodeState.OFFLINE && n.Version == target) ?? -1;
            var state = cluster is null ? "unknown" : (cluster.StateText ?? cluster.State.ToString()) + (cluster.UpgradeModeEnabled ? ", upgrade mode on" : ", upgrade mode off");
            report.FinalState = cluster?.StateText ?? cluster?.State.ToString();
            var resume = $"Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} -Resume";
            string errorId;
            string what;
            string restored;
            var diagnosis = (cause as NodeFailedException)?.Diagnosis;
            if (cause is NodeFailedException nf)
            {
                errorId = diagnosis?.ErrorId ?? (nf.RestoredFully ? "UpgradeNodeFailed" : "UpgradeRollbackFailed");
                what = diagnosis?.Message ?? $"Node {nf.NodeReport.Name} failed at step '{nf.Step.Key}' ({nf.Step.Action}): {cause.Message}";
                restored = (nf.LeftOut ? nf.NodeReport.Restored + "." : "Restored: " + nf.NodeReport.Restored + ".")
                    + (nf.BatchRestored is string rest ? " Restored " + rest + "." : "");
            }
            else
            {
                errorId = cause is BbException bb ? bb.ErrorId : "UpgradeFailed";
                what = (node is null ? "The run failed" : $"The run failed during node {node.Name}") + ": " + cause.Message;
                restored = "Nothing was restored (no node was left changed by this step).";
            }
            var fix = diagnosis?.Remedy ?? "fix the cause";
            var upgradedByUs = report.Nodes.Count(n => n.Outcome == NodeOutcome.Upgraded || n.Outcome == NodeOutcome.AlreadyUpgraded);
            var next = cluster is null
                ? upgradedByUs > 0
                    ? $"{fix}, then run {resume}: the cluster must finish the upgrade ({upgradedByUs} node{(upgradedByUs == 1 ? "" : "s")} already upgraded; upgrade mode cannot be cancelled now; the cluster's state could not be read after the failure)."
                    : $"{fix}, then run {resume} (the cluster's state could not be read after the failure, so whether upgrade mode may still be cancelled is unknown)."
                : diagnosis?.ErrorId == "UpgradeModeCancelled" && cluster is not null && !cluster.UpgradeModeEnabled && onTarget == 0
                ? $"{fix}; when the cluster may be upgraded, run Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} again. Nothing of this run is left to finish "
                    + $"(upgrade mode is off and no node runs {target}), so a fresh run enables upgrade mode again and upgrades every node."
                : cluster?.State == ClusterState.READY_TO_UPGRADE && onTarget == 0
                ? $"{fix}, then run {resume}; or, to give up, cancel upgrade mode with Disable-BbUpgradeMode (allowed because no node was upgraded)."
                : cluster is not null && !cluster.UpgradeModeEnabled && onTarget == 0
                    ? $"{fix}, then run {resume} (nothing was changed in Bitbucket yet)."
                    : $"{fix}, then run {resume}: the cluster must finish the upgrade ({Math.Max(0, onTarget)} node{(onTarget == 1 ? "" : "s")} already run{(onTarget == 1 ? "s" : "")} {target}; upgrade mode cannot be cancelled now).";
            report.Succeeded = false;
            report.ErrorId = errorId;
            report.Error = what;
            report.NextStep = next;
            RollingUpgradeRunner.Finish(_ports.Clock, report, started);
            var message = $"{what} {restored} Cluster: {state}. Journal: {report.JournalPath}. Next step: {next}";
            // A node failure carries the category of what failed it (AuthenticationError for a refused credential, ...).
            var categorized = cause is NodeFailedException { InnerException: BbException } failed ? failed.InnerException : cause;
            var category = categorized is BbException b2 ? b2.Category : cause.InnerException is BbException inner ? inner.Category : BbErrorCategory.NotSpecified;
            return new UpgradeHaltedException(errorId, category, message, report, cause);
        }

        /// <summary>Invoke-BbNodeUpgrade: its node failed and was restored as far as <paramref name="nf"/> says; the error to throw.</summary>
        internal static BbException NodeFailed(ClusterProfile profile, NodeProfile node, NodeFailedException nf, string journal)
        {
            var d = nf.Diagnosis;
            return new BbException(d?.ErrorId ?? (nf.RestoredFully ? "UpgradeNodeFailed" : "UpgradeRollbackFailed"),
                nf.InnerException is BbException bb ? bb.Category : BbErrorCategory.NotSpecified,
                (d is null ? $"Node {node.Name} failed at step '{nf.Step.Key}' ({nf.Step.Action}): {nf.Message}" : d.Message)
                + (nf.LeftOut ? $" {nf.NodeReport.Restored}. " : $" Restored: {nf.NodeReport.Restored}. ")
                + $"Next step: {d?.Remedy ?? "fix the cause"}, then run Invoke-BbNodeUpgrade -ProfilePath {profile.Source ?? "<profile>"} -Name {node.Name} again"
                + (d?.ErrorId == "UpgradeModeCancelled" ? " once upgrade mode is on (Enable-BbUpgradeMode)" : "")
                + $". Journal: {journal}.",
                node.Name, nf.InnerException);
        }
    }
}
