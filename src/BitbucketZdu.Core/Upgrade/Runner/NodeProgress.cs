using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>
    /// How far one node's upgrade is, judged from the real state (not the journal): the first of the node's steps still
    /// to do (<see cref="Next"/>), every step before it in <see cref="StepOrder"/> being done. A resumed run starts there.
    /// </summary>
    internal readonly struct NodeProgress
    {
        /// <summary>A node's steps, in the order they run.</summary>
        internal static readonly IReadOnlyList<StepKind> StepOrder = new[]
            { StepKind.TakeOut, StepKind.Stop, StepKind.WaitOffline, StepKind.Install, StepKind.Start, StepKind.HealthGate, StepKind.PutBack };

        private NodeProgress(StepKind? next, string why)
        {
            Next = next;
            Why = why;
        }

        /// <summary>The first step still to do, or null when every step is done (the node runs the target and is in rotation).</summary>
        public StepKind? Next { get; }

        /// <summary>The state it was judged from (install dir, process, rotation, API), for the journal's "skipped" lines.</summary>
        public string Why { get; }

        public bool AllDone => Next is null;

        /// <summary>True when the effect of <paramref name="kind"/> is in place: it comes before <see cref="Next"/>.</summary>
        public bool IsDone(StepKind kind)
        {
            if (Next is not StepKind next) return true;
            var index = IndexOf(kind);
            if (index < 0) throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a node step.");
            return index < IndexOf(next);
        }

        private static int IndexOf(StepKind kind)
        {
            for (var i = 0; i < StepOrder.Count; i++)
                if (StepOrder[i] == kind) return i;
            return -1;
        }

        /// <summary>Reads the node's state (host, load balancer, cluster API) and decides where its upgrade stands. Reads only.</summary>
        internal static async Task<NodeProgress> ReadAsync(UpgradePorts ports, string target, NodeProfile node, CancellationToken ct)
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
                return new NodeProgress(healthy && rotation == RotationState.InRotation ? null : StepKind.HealthGate, why);
            }
            if (onTarget) return new NodeProgress(StepKind.Start, why);
            if (!hostState.ProcessRunning) return new NodeProgress(api is null || api.State == NodeState.OFFLINE ? StepKind.Install : StepKind.WaitOffline, why);
            // Out of rotation with the process up is never proof that the take-out finished: a run killed after the
            // member went to maintenance, during the wait for its requests in flight, looks the same. The take-out runs
            // again; on a member already out it changes nothing and only waits for what is still in flight.
            return new NodeProgress(StepKind.TakeOut, why);
        }
    }
}
