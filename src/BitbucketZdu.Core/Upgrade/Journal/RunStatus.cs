using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>Where a recorded run stands.</summary>
    public enum RunState
    {
        /// <summary>No end line yet and the process that wrote it still runs (or runs on another host, where it cannot be checked).</summary>
        Running,
        /// <summary>Stopped by Ctrl+C, or its process ended without an end line (a crash, a closed window).</summary>
        Interrupted,
        /// <summary>A step failed; the run stopped and says what to fix.</summary>
        Halted,
        /// <summary>-StopAfter reached (run-paused): stopped on purpose with every node in rotation; -Resume does the rest.</summary>
        Paused,
        Completed,
    }

    /// <summary>What a run did to one node, from the journal (and, when probed, what the node shows now).</summary>
    public sealed class RunNodeStatus
    {
        public int Order { get; set; }
        public string Name { get; set; } = "";
        /// <summary>The last step the run began on this node (e.g. <c>stop</c>), or null when it did not reach the node yet.</summary>
        public string? LastStep { get; set; }
        /// <summary>NotStarted, PreStaged, Begun, Skipped, Interrupted, Failed, RolledBack, RollbackFailed or Done.</summary>
        public string Progress { get; set; } = "NotStarted";
        /// <summary>True when the run took the node out of rotation and did not put it back (journal), whatever the probe says.</summary>
        public bool LeftOutOfRotation { get; set; }
        /// <summary>The node's version in the cluster API now (probed), or null.</summary>
        public string? Version { get; set; }
        /// <summary>The node's state in the cluster API now (probed), e.g. ACTIVE; null when not probed.</summary>
        public string? ApiState { get; set; }
        /// <summary>The node's load-balancer rotation now (probed), e.g. OutOfRotation; null when not probed.</summary>
        public string? Rotation { get; set; }

        public override string ToString() => $"{Order}. {Name}: {Progress}{(LastStep is null ? "" : " at " + LastStep)}";
    }

    /// <summary>The nodes of a run; as text (a CSV cell) one readable line, not the collection's type name.</summary>
    public sealed class RunNodeList : List<RunNodeStatus>
    {
        public RunNodeList() { }
        public RunNodeList(IEnumerable<RunNodeStatus> nodes) : base(nodes) { }
        public override string ToString() => string.Join("; ", this.Select(n => n.ToString()));
    }

    /// <summary>
    /// One run read back from a cluster's journal: its state, each node's step, the node left out of rotation, and the
    /// exact command that continues it. Enums and durations are strings and seconds, so the object serialises as read.
    /// </summary>
    public sealed class RollingUpgradeStatus
    {
        public string Cluster { get; set; } = "";
        public string RunId { get; set; } = "";
        /// <summary>Running, Interrupted, Halted, Paused or Completed (a name, so ConvertTo-Json and Export-Csv show it as read).</summary>
        public string State { get; set; } = "";
        /// <summary>Rolling (Invoke-BbRollingUpgrade) or Node (Invoke-BbNodeUpgrade).</summary>
        public string Kind { get; set; } = "Rolling";
        public string? FromVersion { get; set; }
        public string? TargetVersion { get; set; }
        public DateTimeOffset StartedAt { get; set; }
        public DateTimeOffset LastActivityAt { get; set; }
        /// <summary>Seconds from the first to the last journal line of the run.</summary>
        public double DurationSeconds { get; set; }
        public bool Resumed { get; set; }
        /// <summary>The host and process that wrote the run, e.g. <c>admin01 pid 4242</c>.</summary>
        public string? RunBy { get; set; }
        /// <summary>The last step begun (e.g. <c>node-2/start</c>) and the last journal message.</summary>
        public string? LastStep { get; set; }
        public string? LastMessage { get; set; }
        /// <summary>Nodes the run took out of rotation and did not put back (journal), comma-separated; empty when none.</summary>
        public string OutOfRotation { get; set; } = "";
        /// <summary>The exact command to go on (resume, or watch), or empty when nothing is left to do.</summary>
        public string NextCommand { get; set; } = "";
        /// <summary>The cluster API's state now (probed), e.g. MIXED; null when not probed.</summary>
        public string? ClusterState { get; set; }
        public bool? UpgradeMode { get; set; }
        public string? Journal { get; set; }
        public RunNodeList Nodes { get; set; } = new RunNodeList();

        /// <summary>One line for the console: what, where it stands, what to run next.</summary>
        public string Summary =>
            $"Run {RunId} of cluster {Cluster} ({FromVersion ?? "?"} -> {TargetVersion ?? "?"}): {State}"
            + (LastStep is null ? "" : $" at {LastStep}")
            + (OutOfRotation.Length > 0 ? $"; out of rotation: {OutOfRotation}" : "")
            + (NextCommand.Length > 0 ? $". Next: {NextCommand}" : ".");

        public override string ToString() => Summary;
    }

    /// <summary>Reads runs back from journal lines (engine side of Get-BbRollingUpgrade; no I/O here).</summary>
    public static class RunStatusReader
    {
        private static readonly string[] EndKinds = { JournalKinds.RunCompleted, JournalKinds.RunHalted, JournalKinds.RunCancelled, JournalKinds.RunPaused };

        /// <summary>Every run in the journal, oldest first, grouped by run id (a resumed run is one run).</summary>
        /// <param name="isAlive">Whether the process that wrote a run still runs: (host, pid) → true/false, or null when it cannot tell (another host).</param>
        /// <param name="profileSource">The profile path for the next command.</param>
        public static IReadOnlyList<RollingUpgradeStatus> Read(string cluster, IReadOnlyList<JournalEntry> entries, IReadOnlyList<string> profileNodes,
            Func<string?, int?, bool?> isAlive, string? profileSource, string? journal)
        {
            var order = new List<string>();
            var byRun = new Dictionary<string, List<JournalEntry>>(StringComparer.Ordinal);
            foreach (var e in entries)
            {
                if (!byRun.TryGetValue(e.RunId, out var list))
                {
                    byRun[e.RunId] = list = new List<JournalEntry>();
                    order.Add(e.RunId);
                }
                list.Add(e);
            }
            return order.Select(id => One(cluster, byRun[id], profileNodes, isAlive, profileSource, journal)).ToList();
        }

        private static RollingUpgradeStatus One(string cluster, List<JournalEntry> run, IReadOnlyList<string> profileNodes,
            Func<string?, int?, bool?> isAlive, string? profileSource, string? journal)
        {
            var start = run.LastOrDefault(e => e.Kind == JournalKinds.RunStarted || e.Kind == JournalKinds.RunResumed) ?? run[0];
            var first = run.FirstOrDefault(e => e.Kind == JournalKinds.RunStarted) ?? run[0];
            var last = run[run.Count - 1];
            var isNodeRun = !run.Any(e => e.Kind == JournalKinds.RunStarted);
            var nodeOrder = (first.NodeOrder is { Count: > 0 } o ? o : profileNodes.ToList())
                .Concat(run.Where(e => e.Node is not null).Select(e => e.Node!)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (isNodeRun) nodeOrder = run.Where(e => e.Node is not null).Select(e => e.Node!).Distinct(StringComparer.OrdinalIgnoreCase).ToList();

            var endKind = run.LastOrDefault(e => EndKinds.Contains(e.Kind) && run.IndexOf(e) >= run.IndexOf(start))?.Kind;
            var failed = run.Skip(run.IndexOf(start)).Any(e => e.Kind == JournalKinds.StepFailed);
            RunState state;
            if (endKind == JournalKinds.RunCompleted) state = RunState.Completed;
            else if (endKind == JournalKinds.RunHalted) state = RunState.Halted;
            else if (endKind == JournalKinds.RunCancelled) state = RunState.Interrupted;
            else if (endKind == JournalKinds.RunPaused) state = RunState.Paused;
            else if (isNodeRun && last.Kind == JournalKinds.StepDone && last.Step?.EndsWith("/put-back", StringComparison.Ordinal) == true) state = RunState.Completed;
            else if (isNodeRun && failed && run.Any(e => e.Kind == JournalKinds.RollbackDone || e.Kind == JournalKinds.RollbackFailed)) state = RunState.Halted;
            else state = isAlive(start.Host, start.Pid) == false ? RunState.Interrupted : RunState.Running;

            var nodes = nodeOrder.Select((name, i) => Node(run, name, i + 1)).ToList();
            var outOf = nodes.Where(n => n.LeftOutOfRotation).Select(n => n.Name).ToList();
            var profile = Quote(profileSource ?? "<profile>");
            var target = nodes.FirstOrDefault(n => n.Progress != "NotStarted" && n.Progress != "Done")?.Name ?? nodes.FirstOrDefault()?.Name ?? "<node>";
            var next = state switch
            {
                RunState.Completed => "",
                RunState.Running => $"Get-BbRollingUpgrade -ProfilePath {profile}   # the run is still going{(start.Host is null ? "" : $" (process {start.Pid} on {start.Host})")}; look again later",
                _ when isNodeRun => $"Invoke-BbNodeUpgrade -ProfilePath {profile} -Name {target}",
                _ => $"Invoke-BbRollingUpgrade -ProfilePath {profile} -Resume",
            };
            var lastBegun = run.LastOrDefault(e => e.Step is not null && (e.Kind == JournalKinds.StepBegin || e.Kind == JournalKinds.StepFailed || e.Kind == JournalKinds.RollbackBegin));
            return new RollingUpgradeStatus
            {
                Cluster = cluster,
                RunId = first.RunId,
                State = state.ToString(),
                Kind = isNodeRun ? "Node" : "Rolling",
                FromVersion = first.FromVersion ?? start.FromVersion,
                TargetVersion = first.TargetVersion ?? start.TargetVersion ?? run.Select(e => e.TargetVersion).LastOrDefault(v => v is not null),
                StartedAt = run[0].Time,
                LastActivityAt = last.Time,
                DurationSeconds = Math.Round((last.Time - run[0].Time).TotalSeconds, 1),
                Resumed = run.Any(e => e.Kind == JournalKinds.RunResumed),
                RunBy = start.Host is null ? null : start.Host + (start.Pid is int pid ? " pid " + pid.ToString(CultureInfo.InvariantCulture) : ""),
                LastStep = lastBegun?.Step,
                LastMessage = last.Message,
                OutOfRotation = string.Join(", ", outOf),
                NextCommand = next,
                Journal = journal,
                Nodes = new RunNodeList(nodes),
            };
        }

        private static RunNodeStatus Node(List<JournalEntry> run, string name, int order)
        {
            var mine = run.Where(e => string.Equals(e.Node, name, StringComparison.OrdinalIgnoreCase) && e.Step is not null).ToList();
            var status = new RunNodeStatus { Order = order, Name = name };
            if (mine.Count == 0) return status;
            var last = mine[mine.Count - 1];
            status.LastStep = StepName(mine.LastOrDefault(e => e.Kind == JournalKinds.StepBegin || e.Kind == JournalKinds.StepFailed)?.Step ?? last.Step);
            status.Progress = last.Kind switch
            {
                JournalKinds.StepBegin => "Begun",
                JournalKinds.StepDone => last.Step!.EndsWith("/put-back", StringComparison.Ordinal) ? "Done" : "Begun",
                JournalKinds.StepSkipped => last.Step!.EndsWith("/put-back", StringComparison.Ordinal) ? "Done" : "Skipped",
                // The recorder journals a Ctrl+C inside a step as a failure with this message.
                JournalKinds.StepFailed => last.Message?.StartsWith("cancelled", StringComparison.OrdinalIgnoreCase) == true ? "Interrupted" : "Failed",
                JournalKinds.RollbackDone => "RolledBack",
                JournalKinds.RollbackFailed => "RollbackFailed",
                _ => "Begun",
            };
            // Pre-stage alone leaves the node untouched and serving.
            if (mine.All(e => e.Step!.EndsWith("/pre-stage", StringComparison.Ordinal)))
                status.Progress = mine.Any(e => e.Kind == JournalKinds.StepFailed) ? "Failed" : "PreStaged";
            var tookOut = mine.FindLastIndex(e => e.Step!.EndsWith("/take-out", StringComparison.Ordinal) && (e.Kind == JournalKinds.StepBegin || e.Kind == JournalKinds.StepDone));
            var putBack = mine.FindLastIndex(e => (e.Step!.EndsWith("/put-back", StringComparison.Ordinal) && (e.Kind == JournalKinds.StepDone || e.Kind == JournalKinds.StepSkipped))
                || e.Kind == JournalKinds.RollbackDone);
            status.LeftOutOfRotation = tookOut >= 0 && putBack < tookOut;
            return status;
        }

        /// <summary>Adds what the cluster API and the load balancers show now to the run's nodes.</summary>
        public static void AddProbe(RollingUpgradeStatus status, ZduCluster? cluster, IReadOnlyDictionary<string, RotationState>? rotation,
            Func<string, ZduNode?> findNode)
        {
            if (cluster is not null)
            {
                status.ClusterState = cluster.StateText ?? cluster.State.ToString();
                status.UpgradeMode = cluster.UpgradeModeEnabled;
            }
            foreach (var n in status.Nodes)
            {
                if (cluster is not null && findNode(n.Name) is ZduNode api)
                {
                    n.Version = api.Version;
                    n.ApiState = api.StateText ?? api.State.ToString();
                }
                if (rotation is not null && rotation.TryGetValue(n.Name, out var r)) n.Rotation = r.ToString();
            }
        }

        private static string? StepName(string? key) => key is null ? null : key.Substring(key.IndexOf('/') + 1);

        private static string Quote(string path) => path.IndexOfAny(new[] { ' ', '\'', '$', '`' }) < 0 ? path : "'" + path.Replace("'", "''") + "'";
    }
}
