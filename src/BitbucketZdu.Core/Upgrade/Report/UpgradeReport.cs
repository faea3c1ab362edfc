using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace BitbucketZdu.Core.Upgrade.Report
{
    public enum NodeOutcome
    {
        /// <summary>The run did not reach the node.</summary>
        NotStarted,
        Upgraded,
        /// <summary>The node already ran the target version in rotation (a resumed run).</summary>
        AlreadyUpgraded,
        /// <summary>The node failed and was restored to its old version and put back into rotation.</summary>
        RolledBack,
        /// <summary>The node failed and could not be fully restored: see Error.</summary>
        Failed,
        /// <summary>Ctrl+C stopped the run during this node.</summary>
        Interrupted,
    }

    /// <summary>What happened to one node, with its timings.</summary>
    public sealed class NodeUpgradeReport
    {
        public int Order { get; set; }
        public string Name { get; set; } = "";
        public string? FromVersion { get; set; }
        public string? ToVersion { get; set; }
        public NodeOutcome Outcome { get; set; }
        /// <summary>The batch the node went in (-MaxUnavailable; with 1, every node is its own batch), or null when it had nothing to do.</summary>
        public int? Batch { get; set; }
        /// <summary>Draining at the load balancer until idle and in maintenance.</summary>
        public TimeSpan? DrainTime { get; set; }
        /// <summary>Graceful stop until the process is gone and the API shows OFFLINE.</summary>
        public TimeSpan? StopTime { get; set; }
        /// <summary>Switching to the new install dir.</summary>
        public TimeSpan? InstallTime { get; set; }
        /// <summary>Start until the health gate passed (/status RUNNING, ACTIVE on the target version, seen from another node).</summary>
        public TimeSpan? StartTime { get; set; }
        /// <summary>Putting back into rotation until the load balancer sees it healthy.</summary>
        public TimeSpan? PutBackTime { get; set; }
        /// <summary>From out of rotation (after draining) until back in rotation and healthy.</summary>
        public TimeSpan? OutOfRotation { get; set; }
        /// <summary>The node's whole time minus the time spent in the steps above: the tool's own cost.</summary>
        public TimeSpan? Overhead { get; set; }
        public TimeSpan? Total { get; set; }
        /// <summary>What failed, or null.</summary>
        public string? Error { get; set; }
        /// <summary>What was done to restore the node after a failure.</summary>
        public string? Restored { get; set; }

        // The same durations as numbers (null when the step did not run, e.g. on a resumed node): what ConvertTo-Json
        // and Export-Csv readers want, where a TimeSpan expands into Ticks/TotalDays.
        public double? DrainSeconds => Seconds(DrainTime);
        public double? StopSeconds => Seconds(StopTime);
        public double? InstallSeconds => Seconds(InstallTime);
        public double? StartSeconds => Seconds(StartTime);
        public double? PutBackSeconds => Seconds(PutBackTime);
        public double? OutOfRotationSeconds => Seconds(OutOfRotation);
        public double? OverheadSeconds => Seconds(Overhead);
        public double? TotalSeconds => Seconds(Total);
        /// <summary>The outcome as its name (ConvertTo-Json writes enums as numbers).</summary>
        public string OutcomeName => Outcome.ToString();

        internal static double? Seconds(TimeSpan? t) => t is TimeSpan v ? Math.Round(v.TotalSeconds, 3) : (double?)null;

        public override string ToString() => $"{Order}. {Name}: {Outcome} {FromVersion} -> {ToVersion}";
    }

    /// <summary>The result of a rolling upgrade: per node and a summary. Returned on success and carried by the halt error.</summary>
    public sealed class UpgradeReport
    {
        public string Cluster { get; set; } = "";
        public string RunId { get; set; } = "";
        public string? FromVersion { get; set; }
        public string TargetVersion { get; set; } = "";
        public bool Succeeded { get; set; }
        public bool Resumed { get; set; }
        /// <summary>A resumed run found the work already done (the killed run's approve had landed): it only recorded completion.</summary>
        public bool AlreadyDone { get; set; }
        /// <summary>The run took over an upgrade in progress from the real state (-Adopt): the journal had no run of it.</summary>
        public bool Adopted { get; set; }
        /// <summary>-StopAfter was reached: the cluster is MIXED with upgrade mode on and every node in rotation; -Resume continues.</summary>
        public bool Paused { get; set; }
        public int? StopAfter { get; set; }
        /// <summary>-MaxUnavailable: up to this many nodes were out of rotation at once.</summary>
        public int MaxUnavailable { get; set; } = 1;
        /// <summary>The cluster state when the run ended.</summary>
        public string? FinalState { get; set; }
        public IReadOnlyList<NodeUpgradeReport> Nodes { get; set; } = Array.Empty<NodeUpgradeReport>();
        public DateTimeOffset StartedAt { get; set; }
        public DateTimeOffset FinishedAt { get; set; }
        public TimeSpan Duration { get; set; }
        public TimeSpan PreflightDuration { get; set; }
        public TimeSpan PreStageDuration { get; set; }
        public double DurationSeconds => NodeUpgradeReport.Seconds(Duration) ?? 0;
        public double PreflightSeconds => NodeUpgradeReport.Seconds(PreflightDuration) ?? 0;
        public double PreStageSeconds => NodeUpgradeReport.Seconds(PreStageDuration) ?? 0;
        public string? Error { get; set; }
        public string? ErrorId { get; set; }
        /// <summary>What to do now (after a failure: resume, or cancel upgrade mode).</summary>
        public string? NextStep { get; set; }
        public string? JournalPath { get; set; }

        public int NodesUpgraded => Nodes.Count(n => n.Outcome == NodeOutcome.Upgraded || n.Outcome == NodeOutcome.AlreadyUpgraded);

        public string Summary =>
            Paused
                ? string.Format(CultureInfo.InvariantCulture, "Upgrade of cluster {0} to {1} PAUSED after {2} node(s) (-StopAfter): {3}/{4} nodes on {1}, state {5}, upgrade mode on, every node in rotation, in {6}. Next: {7}",
                    Cluster, TargetVersion, StopAfter, NodesUpgraded, Nodes.Count, FinalState ?? "?", Format(Duration), NextStep)
            : Succeeded
                ? string.Format(CultureInfo.InvariantCulture, "Cluster {0} upgraded from {1} to {2}: {3}/{4} nodes{7}, state {5}, in {6}.",
                    Cluster, FromVersion ?? "?", TargetVersion, NodesUpgraded, Nodes.Count, FinalState ?? "?", Format(Duration),
                    MaxUnavailable > 1 ? string.Format(CultureInfo.InvariantCulture, " in batches of up to {0}", MaxUnavailable) : "")
                  + (AlreadyDone ? " The interrupted run had already done the work; this run recorded its completion." : "")
                : string.Format(CultureInfo.InvariantCulture, "Upgrade of cluster {0} to {1} HALTED: {2}/{3} nodes on {1}, state {4}. {5} Next: {6}",
                    Cluster, TargetVersion, NodesUpgraded, Nodes.Count, FinalState ?? "?", Error, NextStep);

        public override string ToString() => Summary;

        internal static string Format(TimeSpan t) => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
    }
}
