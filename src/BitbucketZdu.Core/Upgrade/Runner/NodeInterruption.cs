using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>
    /// Ctrl+C during a node: not a failure (nothing is rolled back), but no node is left out of rotation by us while it
    /// can still serve; where each interrupted node was left goes into the journal's run-cancelled line.
    /// </summary>
    internal sealed class NodeInterruption
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly ClusterProfile _profile;
        private readonly NodeRestore _restore;

        public NodeInterruption(UpgradePorts ports, IOperationHost host, ClusterProfile profile, NodeRestore restore)
        {
            _ports = ports;
            _host = host;
            _profile = profile;
            _restore = restore;
        }

        private string Target => _profile.TargetVersion.ToString();
        private UpgradeTimeouts Timeouts => _profile.Timeouts;

        private readonly List<string> _interruptions = new List<string>();

        /// <summary>After cancelled nodes: where Ctrl+C left each (put back, or left out of rotation and why), for the journal.</summary>
        public string? Summary
        {
            get { lock (_interruptions) return _interruptions.Count == 0 ? null : string.Join("; ", _interruptions); }
        }

        private void Add(string where)
        {
            lock (_interruptions) _interruptions.Add(where);
        }

        /// <summary>
        /// After Ctrl+C: a node still running its old version (or one that passed the health gate, interrupted while being
        /// put back) is put back so we never leave it out by ourselves. A node on the new version that has not passed the
        /// health gate stays out: -Resume runs the gate first.
        /// </summary>
        public async Task<string?> PutBackIfStillServingAsync(NodeProfile node, PlanStep? interrupted)
        {
            using var cts = new CancellationTokenSource(Timeouts.Healthy);
            try
            {
                var state = await _ports.Nodes.GetStateAsync(node, cts.Token).ConfigureAwait(false);
                if (state.ProcessRunning && state.InstalledVersion == Target && interrupted?.Kind != StepKind.PutBack
                    && await _ports.Rotation.GetStateAsync(node, cts.Token).ConfigureAwait(false) != RotationState.InRotation)
                {
                    Add($"node {node.Name} runs {Target} but was not through the health gate, so it stays out of rotation until -Resume finishes it");
                    _host.Warning($"Node {node.Name} was interrupted before passing the health gate on {Target}: it stays out of rotation. Run with -Resume to finish it.");
                    return null;
                }
                if (!state.ProcessRunning || !state.StatusRunning)
                {
                    Add($"node {node.Name} was {(state.ProcessRunning ? "starting" : "stopped")} (install dir {state.InstalledVersion ?? "unknown"}) and stays out of rotation until -Resume finishes it");
                    _host.Warning($"Node {node.Name} was interrupted while {(state.ProcessRunning ? "starting" : "stopped")}: it stays out of rotation. Run with -Resume to finish it.");
                    return null;
                }
                if (await _ports.Rotation.GetStateAsync(node, cts.Token).ConfigureAwait(false) == RotationState.InRotation)
                {
                    Add($"node {node.Name} is in rotation, untouched");
                    return null;
                }
                await _ports.Rotation.PutBackAsync(node, Timeouts.Healthy, cts.Token).ConfigureAwait(false);
                await _restore.WriteRollbackAsync(JournalKinds.RollbackDone, node, $"interrupted: node {node.Name} put back into rotation").ConfigureAwait(false);
                Add($"node {node.Name} still ran {state.InstalledVersion} and was put back into rotation");
                return $"node {node.Name} put back into rotation";
            }
            catch (Exception ex)
            {
                Add($"node {node.Name} could NOT be put back into rotation ({ex.Message}): check it at the load balancer");
                _host.Warning($"Could not put node {node.Name} back into rotation after the interruption: {ex.Message}");
                return null;
            }
        }
    }
}
