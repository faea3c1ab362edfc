using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Core.Rules
{
    /// <summary>The state-changing actions of the rolling-upgrade API.</summary>
    public enum ZduAction
    {
        /// <summary>POST /start: enable upgrade mode.</summary>
        Start,
        /// <summary>POST /cancel: disable upgrade mode before any node is upgraded.</summary>
        Cancel,
        /// <summary>POST /approve: finalize once every active node runs the new version.</summary>
        Approve,
        /// <summary>POST /retryUpgrade: run failed finalization tasks again (newer servers).</summary>
        RetryUpgrade,
    }

    /// <summary>Whether an action is allowed now, and why (or why not) in words an admin can act on.</summary>
    public sealed class ZduActionVerdict
    {
        internal ZduActionVerdict(ZduAction action, bool allowed, string reason, bool fromLinks)
        {
            Action = action;
            Allowed = allowed;
            Reason = reason;
            FromServerLinks = fromLinks;
        }

        public ZduAction Action { get; }
        public bool Allowed { get; }
        /// <summary>One or two sentences: the state, the nodes that matter, what to do instead.</summary>
        public string Reason { get; }
        /// <summary>True when the server's hypermedia links decided (they win over the state table).</summary>
        public bool FromServerLinks { get; }

        public override string ToString() => (Allowed ? "allowed: " : "refused: ") + Reason;
    }

    /// <summary>
    /// The rolling-upgrade state guards (start ⇔ STABLE, cancel ⇔ READY_TO_UPGRADE, approve ⇔
    /// READY_TO_RUN_UPGRADE_TASKS, retry ⇔ UPGRADE_TASKS_FAILED). When the cluster carries links the server's own
    /// answer (is the rel present?) decides; the state table is the fallback for servers that send no links.
    /// </summary>
    public static class ZduStateRules
    {
        public static string RelationOf(ZduAction action) => action switch
        {
            ZduAction.Start => ZduLinkRelations.Start,
            ZduAction.Cancel => ZduLinkRelations.Cancel,
            ZduAction.Approve => ZduLinkRelations.Approve,
            _ => ZduLinkRelations.RetryUpgrade,
        };

        /// <summary>The one cluster state in which the server accepts <paramref name="action"/>.</summary>
        public static ClusterState RequiredState(ZduAction action) => action switch
        {
            ZduAction.Start => ClusterState.STABLE,
            ZduAction.Cancel => ClusterState.READY_TO_UPGRADE,
            ZduAction.Approve => ClusterState.READY_TO_RUN_UPGRADE_TASKS,
            _ => ClusterState.UPGRADE_TASKS_FAILED,
        };

        public static ZduActionVerdict Check(ZduCluster cluster, ZduAction action)
        {
            if (cluster is null) throw new ArgumentNullException(nameof(cluster));
            var fromLinks = cluster.Links.Count > 0;
            var allowed = fromLinks ? cluster.Allows(RelationOf(action)) : cluster.State == RequiredState(action);
            var reason = allowed ? Allowed(cluster, action) : Refused(cluster, action);
            if (fromLinks && allowed != (cluster.State == RequiredState(action)) && cluster.State != ClusterState.Unknown)
                reason += $" (The server's links decide here; the documented rule would say otherwise for {StateName(cluster)}.)";
            return new ZduActionVerdict(action, allowed, reason, fromLinks);
        }

        /// <summary>"start, cancel" or "none": the actions the server offers now.</summary>
        public static string DescribeAllowed(ZduCluster cluster)
        {
            IEnumerable<string> actions = cluster.Links.Count > 0
                ? cluster.AllowedActions
                : Enum.GetValues(typeof(ZduAction)).Cast<ZduAction>().Where(a => cluster.State == RequiredState(a)).Select(RelationOf);
            var list = actions.ToArray();
            return list.Length == 0 ? "none" : string.Join(", ", list);
        }

        /// <summary>"on 8.19.3: node-1, node-2; on 8.19.4: node-3; ERROR: node-4; OFFLINE: node-5".</summary>
        public static string DescribeNodes(ZduCluster cluster)
        {
            if (cluster.Nodes.Count == 0) return "no nodes reported";
            var parts = new List<string>();
            var live = cluster.Nodes.Where(n => n.State != NodeState.OFFLINE && n.State != NodeState.ERROR).ToArray();
            foreach (var g in live.GroupBy(n => n.Version ?? "unknown version").OrderBy(g => g.Key, StringComparer.Ordinal))
                parts.Add($"on {g.Key}: {Names(g)}");
            var error = cluster.Nodes.Where(n => n.State == NodeState.ERROR).ToArray();
            if (error.Length > 0) parts.Add("ERROR: " + Names(error));
            var offline = cluster.Nodes.Where(n => n.State == NodeState.OFFLINE).ToArray();
            if (offline.Length > 0) parts.Add("OFFLINE: " + Names(offline));
            return string.Join("; ", parts);
        }

        /// <summary>A sentence for messages: the state, upgrade mode, nodes and allowed actions.</summary>
        public static string DescribeCluster(ZduCluster cluster) =>
            $"The cluster is {StateName(cluster)} (upgrade mode {(cluster.UpgradeModeEnabled ? "on" : "off")}"
            + (cluster.OriginalVersion is null ? "" : $", original version {cluster.OriginalVersion}")
            + $"; {DescribeNodes(cluster)}). Allowed now: {DescribeAllowed(cluster)}.";

        private static string Allowed(ZduCluster cluster, ZduAction action) => action switch
        {
            ZduAction.Start => $"The cluster is {StateName(cluster)}: upgrade mode can be enabled ({DescribeNodes(cluster)}).",
            ZduAction.Cancel => $"No node is upgraded yet ({DescribeNodes(cluster)}): upgrade mode can be disabled.",
            ZduAction.Approve => $"Every active node runs the new version ({DescribeNodes(cluster)}): the upgrade can be finalized.",
            _ => "Finalization tasks failed: they can be run again.",
        };

        private static string Refused(ZduCluster cluster, ZduAction action)
        {
            var state = cluster.State;
            var nodes = DescribeNodes(cluster);
            var errors = cluster.Nodes.Where(n => n.State == NodeState.ERROR).ToArray();
            var allowedNow = $" Allowed now: {DescribeAllowed(cluster)}.";
            switch (action)
            {
                case ZduAction.Start:
                    if (cluster.UpgradeModeEnabled || state == ClusterState.READY_TO_UPGRADE || state == ClusterState.MIXED || state == ClusterState.READY_TO_RUN_UPGRADE_TASKS)
                        return $"Upgrade mode is already enabled: the cluster is {StateName(cluster)}"
                            + (cluster.OriginalVersion is null ? "" : $" (original version {cluster.OriginalVersion})") + $"; {nodes}. Carry on upgrading the nodes, or disable it with Disable-BbUpgradeMode while no node is upgraded." + allowedNow;
                    if (state == ClusterState.RUNNING_UPGRADE_TASKS)
                        return $"Finalization tasks of the last upgrade are still running ({nodes}). Wait for the cluster to be STABLE (Wait-BbClusterState -State STABLE)." + allowedNow;
                    if (state == ClusterState.UPGRADE_TASKS_FAILED)
                        return $"Finalization tasks of the last upgrade failed ({nodes}). Retry them or fix the cause before starting another upgrade." + allowedNow;
                    return $"Upgrade mode can be enabled only when the cluster is STABLE; it is {StateName(cluster)} ({nodes})." + allowedNow;

                case ZduAction.Cancel:
                    if (!cluster.UpgradeModeEnabled && (state == ClusterState.STABLE || state == ClusterState.Unknown))
                        return $"Upgrade mode is not enabled: the cluster is {StateName(cluster)} ({nodes})." + allowedNow;
                    if (state == ClusterState.MIXED)
                        return $"The nodes do not all run the original version {cluster.OriginalVersion ?? "?"} or some are in ERROR ({nodes}). Upgrade mode can be disabled only before any node is upgraded: finish the upgrade of every node, then finalize with Complete-BbRollingUpgrade."
                            + (errors.Length > 0 ? $" Fix or stop the ERROR node(s) first: {Names(errors)}." : "") + allowedNow;
                    if (state == ClusterState.READY_TO_RUN_UPGRADE_TASKS)
                        return $"Every active node already runs the new version ({nodes}). There is no way back through the API: finalize with Complete-BbRollingUpgrade." + allowedNow;
                    return $"Upgrade mode can be disabled only in READY_TO_UPGRADE (before any node is upgraded); the cluster is {StateName(cluster)} ({nodes})." + allowedNow;

                case ZduAction.Approve:
                    if (!cluster.UpgradeModeEnabled && (state == ClusterState.STABLE || state == ClusterState.Unknown))
                        return $"There is no rolling upgrade to finalize: upgrade mode is off and the cluster is {StateName(cluster)} ({nodes})." + allowedNow;
                    if (state == ClusterState.READY_TO_UPGRADE)
                        return $"No node runs a new version yet: every active node is still on the original version {cluster.OriginalVersion ?? "?"} ({nodes}). Upgrade the nodes first." + allowedNow;
                    if (state == ClusterState.MIXED)
                        return (errors.Length > 0
                                ? $"Node(s) in ERROR block finalizing: {Names(errors)}. Fix them or stop them gracefully (OFFLINE nodes are ignored). "
                                : "The active nodes run different versions. ")
                            + $"Every active node must run the same new version before finalizing ({nodes})." + allowedNow;
                    if (state == ClusterState.RUNNING_UPGRADE_TASKS)
                        return $"Finalization is already running ({nodes})." + allowedNow;
                    return $"The upgrade can be finalized only in READY_TO_RUN_UPGRADE_TASKS; the cluster is {StateName(cluster)} ({nodes})." + allowedNow;

                default:
                    return $"Finalization tasks can be retried only when they failed (UPGRADE_TASKS_FAILED) and the server offers it; the cluster is {StateName(cluster)} ({nodes})." + allowedNow;
            }
        }

        private static string StateName(ZduCluster cluster) =>
            cluster.State == ClusterState.Unknown ? cluster.StateText ?? "in an unknown state" : cluster.State.ToString();

        private static string Names(IEnumerable<ZduNode> nodes) =>
            string.Join(", ", nodes.Select(n => n.Name ?? n.Address ?? n.Id ?? "?"));
    }
}
