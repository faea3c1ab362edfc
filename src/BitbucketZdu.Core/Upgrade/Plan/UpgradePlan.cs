using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Plan
{
    /// <summary>The kinds of step, in the order they run for one node.</summary>
    public enum StepKind
    {
        PreStage,
        EnableUpgradeMode,
        TakeOut,
        Stop,
        WaitOffline,
        Install,
        Start,
        HealthGate,
        PutBack,
        Finalize,
        WaitStable,
    }

    /// <summary>One step of a plan: what -WhatIf prints and what the journal records.</summary>
    public sealed class PlanStep
    {
        public PlanStep(int number, StepKind kind, string? node, string target, string action)
        {
            Number = number;
            Kind = kind;
            Node = node;
            Target = target;
            Action = action;
            Key = node is null
                ? kind switch
                {
                    StepKind.EnableUpgradeMode => PlanStepKeys.EnableUpgradeMode,
                    StepKind.Finalize => PlanStepKeys.Finalize,
                    _ => PlanStepKeys.WaitStable,
                }
                : node + "/" + KeyOf(kind);
        }

        public int Number { get; }
        public StepKind Kind { get; }
        /// <summary>The node, or null for cluster-wide steps.</summary>
        public string? Node { get; }
        /// <summary>What the step acts on (node name, cluster URL): ShouldProcess's target.</summary>
        public string Target { get; }
        /// <summary>What the step does, in words: ShouldProcess's action.</summary>
        public string Action { get; }
        /// <summary>Stable key used by the journal, e.g. <c>node-1/stop</c>.</summary>
        public string Key { get; }
        /// <summary>On a resumed or adopted run: why the step is already done (its effect is in place), else null.</summary>
        public string? Done { get; set; }

        public static string KeyOf(StepKind kind) => kind switch
        {
            StepKind.PreStage => "pre-stage",
            StepKind.TakeOut => "take-out",
            StepKind.Stop => "stop",
            StepKind.WaitOffline => "wait-offline",
            StepKind.Install => "install",
            StepKind.Start => "start",
            StepKind.HealthGate => "health-gate",
            StepKind.PutBack => "put-back",
            _ => kind.ToString(),
        };

        public override string ToString() => $"{Number,3}. {Target}: {Action}" + (Done is null ? "" : $" [done: {Done}]");
    }

    /// <summary>A node in plan order, with the load that decided its place.</summary>
    public sealed class PlannedNode
    {
        public int Order { get; set; }
        public string Name { get; set; } = "";
        public string? Version { get; set; }
        public string? State { get; set; }
        public int? TasksTotal { get; set; }
        public int? ActiveUserCount { get; set; }
        /// <summary>The batch the node is planned in (nodes of a batch are out of rotation at the same time), or null when it has nothing to do.</summary>
        public int? Batch { get; set; }
    }

    /// <summary>Nodes upgraded at the same time (-MaxUnavailable): the next batch starts once all of them passed their health gates.</summary>
    public sealed class PlanBatch
    {
        public int Number { get; set; }
        public IReadOnlyList<string> Nodes { get; set; } = Array.Empty<string>();

        /// <summary>What -WhatIf prints for the batch.</summary>
        public string Describe(UpgradePlan plan) =>
            $"Batch {Number} of {plan.Batches.Count}: take {string.Join(", ", Nodes)} out of rotation and upgrade {(Nodes.Count == 1 ? "it" : "them at the same time")} "
            + $"(-MaxUnavailable {plan.MaxUnavailable}; at least {plan.MinInRotation} of {plan.Nodes.Count} nodes stay ACTIVE and in rotation); "
            + "the next batch starts only once every node of this one passed its health gate and is back in rotation; a failure restores the whole batch and halts";

        public override string ToString() => $"Batch {Number}: {string.Join(", ", Nodes)}";
    }

    /// <summary>Everything a run will do, in order. Output of -WhatIf and Invoke-BbRollingUpgrade -WhatIf.</summary>
    public sealed class UpgradePlan
    {
        public string Cluster { get; set; } = "";
        public Uri? BaseUrl { get; set; }
        public string? FromVersion { get; set; }
        public string TargetVersion { get; set; } = "";
        public IReadOnlyList<PlannedNode> Nodes { get; set; } = Array.Empty<PlannedNode>();
        public IReadOnlyList<PlanStep> Steps { get; set; } = Array.Empty<PlanStep>();
        /// <summary>-StopAfter: the run pauses after this many nodes (null: it does them all).</summary>
        public int? StopAfter { get; set; }
        /// <summary>-MaxUnavailable: up to this many nodes out of rotation at once (1: one node at a time).</summary>
        public int MaxUnavailable { get; set; } = 1;
        /// <summary>The capacity rule: at least this many nodes ACTIVE and in rotation at every moment.</summary>
        public int MinInRotation { get; set; }
        /// <summary>The nodes grouped as they are planned to go (those with nothing to do are in none).</summary>
        public IReadOnlyList<PlanBatch> Batches { get; set; } = Array.Empty<PlanBatch>();

        public IReadOnlyList<string> NodeOrder => Nodes.Select(n => n.Name).ToList();

        /// <summary>
        /// Groups the nodes still to upgrade (not on the target, not left for a later run by -StopAfter) in plan order,
        /// up to <see cref="MaxUnavailable"/> per batch.
        /// </summary>
        public void AssignBatches(IReadOnlyCollection<string> later)
        {
            var batches = new List<PlanBatch>();
            var current = new List<string>();
            void Close()
            {
                if (current.Count == 0) return;
                batches.Add(new PlanBatch { Number = batches.Count + 1, Nodes = current.ToList() });
                current.Clear();
            }
            foreach (var n in Nodes)
            {
                n.Batch = null;
                if (later.Contains(n.Name)) { Close(); continue; }
                if (n.Version == TargetVersion && Steps.Where(s => s.Node == n.Name && s.Kind != StepKind.PreStage).All(s => s.Done is not null)) { Close(); continue; }
                current.Add(n.Name);
                n.Batch = batches.Count + 1;
                if (current.Count >= Math.Max(1, MaxUnavailable)) Close();
            }
            Close();
            Batches = batches;
        }

        public PlanBatch? BatchOf(string? node) => node is null ? null : Batches.FirstOrDefault(b => b.Nodes.Contains(node, StringComparer.OrdinalIgnoreCase));

        public override string ToString() => $"{Cluster}: {FromVersion} -> {TargetVersion}, {Nodes.Count} nodes, {Steps.Count} steps"
            + (MaxUnavailable > 1 ? $", {Batches.Count} batch(es) of up to {MaxUnavailable}" : "")
            + (StopAfter is int n ? $", pausing after {n} node(s)" : "");
    }

    /// <summary>Orders nodes (least busy first) and lists every step.</summary>
    public static class UpgradePlanner
    {
        /// <summary>
        /// Least busy first: fewest running tasks, then fewest active users (unknown counts go last), then by name.
        /// <paramref name="fixedOrder"/> (from a journal being resumed) wins over the loads seen now.
        /// </summary>
        public static IReadOnlyList<NodeProfile> Order(ClusterProfile profile, ZduCluster cluster, IReadOnlyList<string>? fixedOrder = null)
        {
            if (fixedOrder is not null && fixedOrder.Count > 0)
            {
                var known = fixedOrder.Select(profile.FindNode).Where(n => n is not null).Select(n => n!).ToList();
                return known.Concat(profile.Nodes.Where(n => !known.Contains(n))).ToList();
            }
            return profile.Nodes
                .Select(n => (node: n, api: NodeMatcher.Find(cluster.Nodes, n)))
                .OrderBy(x => x.api?.TasksTotal is null ? 1 : 0).ThenBy(x => x.api?.TasksTotal ?? 0)
                .ThenBy(x => x.api?.ActiveUserCount is null ? 1 : 0).ThenBy(x => x.api?.ActiveUserCount ?? 0)
                .ThenBy(x => x.node.Name, StringComparer.OrdinalIgnoreCase)
                .Select(x => x.node)
                .ToList();
        }

        public static UpgradePlan Create(ClusterProfile profile, ZduCluster cluster, IReadOnlyList<string>? fixedOrder = null)
        {
            var ordered = Order(profile, cluster, fixedOrder);
            var target = profile.TargetVersion.ToString();
            var steps = new List<PlanStep>();
            void Add(StepKind kind, string? node, string stepTarget, string action) => steps.Add(new PlanStep(steps.Count + 1, kind, node, stepTarget, action));

            foreach (var n in ordered)
                Add(StepKind.PreStage, n.Name, n.Name, $"Pre-stage Bitbucket {target} from {profile.Archive.Location} into a new install dir under {n.InstallRoot} (checksum verified; the running node is untouched)");
            Add(StepKind.EnableUpgradeMode, null, profile.BaseUrl.ToString(), "Enable upgrade mode (POST /rest/zdu/start)");
            foreach (var n in ordered)
            {
                var members = n.Members.Count == 0 ? "no load balancer" : string.Join(", ", n.Members.Select(m => m.ToString()));
                Add(StepKind.TakeOut, n.Name, n.Name, $"Take out of rotation: drain, wait until idle, maintenance ({members})");
                Add(StepKind.Stop, n.Name, n.Name, $"Stop Bitbucket gracefully ({n.ServiceKind}) and wait until the process is gone");
                Add(StepKind.WaitOffline, n.Name, n.Name, "Wait until the cluster API shows the node OFFLINE");
                Add(StepKind.Install, n.Name, n.Name, $"Switch the service to the staged Bitbucket {target} install dir");
                Add(StepKind.Start, n.Name, n.Name, $"Start Bitbucket {target}");
                Add(StepKind.HealthGate, n.Name, n.Name, $"Health gate: {Api.NodeUrls.Status(n.Url)} RUNNING, the API shows the node ACTIVE on {target}, seen from another node too");
                Add(StepKind.PutBack, n.Name, n.Name, "Put back into rotation and wait until the load balancer sees it healthy");
            }
            Add(StepKind.Finalize, null, profile.BaseUrl.ToString(), "Finalize the upgrade (POST /rest/zdu/approve)");
            Add(StepKind.WaitStable, null, profile.BaseUrl.ToString(), $"Wait until the cluster is STABLE on {target}");

            var i = 0;
            return new UpgradePlan
            {
                Cluster = profile.Name,
                BaseUrl = profile.BaseUrl,
                FromVersion = cluster.OriginalVersion ?? cluster.Nodes.FirstOrDefault(x => x.State != NodeState.OFFLINE)?.Version,
                TargetVersion = target,
                Nodes = ordered.Select(n =>
                {
                    var api = NodeMatcher.Find(cluster.Nodes, n);
                    return new PlannedNode
                    {
                        Order = ++i,
                        Name = n.Name,
                        Version = api?.Version,
                        State = api?.StateText ?? api?.State.ToString(),
                        TasksTotal = api?.TasksTotal,
                        ActiveUserCount = api?.ActiveUserCount,
                    };
                }).ToList(),
                Steps = steps,
            };
        }
    }
}
