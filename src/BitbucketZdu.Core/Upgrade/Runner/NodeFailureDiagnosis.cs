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
    /// Names a node failure: turns a failed step's error into what it really means, when the state after the failure
    /// shows it (<see cref="DiagnosedFailure"/>), before the node is restored and the run halts.
    /// </summary>
    internal sealed class NodeFailureDiagnosis
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly ClusterProfile _profile;

        public NodeFailureDiagnosis(UpgradePorts ports, IOperationHost host, ClusterProfile profile)
        {
            _ports = ports;
            _host = host;
            _profile = profile;
        }

        private string Target => _profile.TargetVersion.ToString();
        private UpgradeTimeouts Timeouts => _profile.Timeouts;

        /// <summary>
        /// Finds out what a failed step really means: a node that did not stop in time is still shutting down (its pid and
        /// API state are named, in the profile's terms); a failure while upgrade mode is off means someone cancelled it.
        /// </summary>
        public async Task<Exception> DiagnoseAsync(NodeProfile node, PlanStep failedStep, Exception ex)
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
                    $"Node {node.Name} did not stop within {seconds} s (Timeouts.StopSeconds): Bitbucket is still running ({pid}{(cluster is null ? "" : ", the API shows it " + NodeUpgrader.DescribeApi(api))}).",
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
    }
}
