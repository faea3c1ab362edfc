using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>
    /// -MaxUnavailable n and the capacity rule: up to n nodes out at once, and at every moment at least
    /// <see cref="ClusterProfile.RequiredInRotation"/> nodes (⌈N/2⌉, or the profile's MinNodesInRotation) ACTIVE and in rotation.
    /// Checked once before anything changes (the numbers), and again before each batch (the real state).
    /// </summary>
    public static class CapacityRule
    {
        /// <summary>Refuses an n below 1 or one that breaks the rule even with every other node serving. Reads nothing.</summary>
        public static void Validate(ClusterProfile profile)
        {
            var n = profile.MaxUnavailable;
            var total = profile.Nodes.Count;
            if (n < 1)
                throw new BbException("UpgradeMaxUnavailableInvalid", BbErrorCategory.InvalidArgument,
                    $"-MaxUnavailable must be 1 or more (it was {n}): it is how many nodes may be out of rotation at once. Nothing was changed.", profile.Name);
            // With the defaults (one node at a time, ⌈N/2⌉) the rule holds for every cluster of two or more nodes; a
            // one-node cluster is refused by preflight's own capacity check, as before.
            if (n == 1 && profile.MinNodesInRotation is null) return;
            var min = profile.RequiredInRotation;
            if (min > total)
                throw new BbException("UpgradeCapacityRuleBroken", BbErrorCategory.InvalidArgument,
                    $"MinNodesInRotation is {min} but the profile {profile.Source ?? profile.Name} lists only {total} node(s): no node could ever be taken out. Lower MinNodesInRotation. Nothing was changed.", profile.Name);
            if (total - n < min)
                throw new BbException("UpgradeCapacityRuleBroken", BbErrorCategory.InvalidArgument,
                    $"-MaxUnavailable {n} would leave {Math.Max(0, total - n)} of the {total} nodes ACTIVE and in rotation while a batch is out; the capacity rule needs at least {min} "
                    + $"({(profile.MinNodesInRotation is null ? "half the nodes, rounded up" : "MinNodesInRotation in the profile")}). "
                    + $"Use -MaxUnavailable {Math.Max(1, total - min)} or less{(profile.MinNodesInRotation is null ? "" : ", or lower MinNodesInRotation")}. Nothing was changed.", profile.Name);
        }

        /// <summary>The largest batch the rule allows for this profile (at least 1).</summary>
        internal static int BatchSize(ClusterProfile profile) => Math.Max(1, profile.MaxUnavailable);

        /// <summary>
        /// Before a batch leaves rotation: the nodes outside it that are ACTIVE in the API and in rotation must number at
        /// least the rule's minimum, or nothing of the batch is touched.
        /// </summary>
        internal static async Task CheckBatchAsync(UpgradePorts ports, ClusterProfile profile, IReadOnlyCollection<NodeProfile> batch, CancellationToken ct)
        {
            var min = profile.RequiredInRotation;
            var cluster = await ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
            var serving = new List<string>();
            var notServing = new List<string>();
            foreach (var node in profile.Nodes.Where(n => !batch.Contains(n)))
            {
                var api = NodeMatcher.Find(cluster.Nodes, node);
                var rotation = node.Members.Count == 0 ? RotationState.InRotation : await ports.Rotation.GetStateAsync(node, ct).ConfigureAwait(false);
                if (api is not null && api.State == NodeState.ACTIVE && rotation == RotationState.InRotation) serving.Add(node.Name);
                else notServing.Add($"{node.Name} {(api is null ? "absent from the API" : api.StateText ?? api.State.ToString())}, {rotation} at the load balancer");
            }
            if (serving.Count < min)
                throw new BbException("UpgradeCapacityLow", BbErrorCategory.InvalidOperation,
                    $"Not taking {string.Join(", ", batch.Select(b => b.Name))} out of rotation: only {serving.Count} other node(s) are ACTIVE and in rotation "
                    + $"({(serving.Count == 0 ? "none" : string.Join(", ", serving))}; not serving: {(notServing.Count == 0 ? "none" : string.Join("; ", notServing))}) "
                    + $"and the capacity rule needs at least {min} at every moment. Nothing of this batch was changed. Bring the other nodes back "
                    + "(ACTIVE and in rotation), or resume with a smaller -MaxUnavailable.", profile.Name);
        }
    }
}
