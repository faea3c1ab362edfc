using System;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>Moments a hook can act on. A hook that throws at a node phase fails that node (it is restored); elsewhere it halts the run.</summary>
    public enum UpgradePhase
    {
        /// <summary>Preflight passed; nothing changed yet. Throw to refuse the run.</summary>
        PreflightPassed,
        /// <summary>Every node is pre-staged.</summary>
        PreStaged,
        UpgradeModeEnabled,
        /// <summary>Before the node is taken out of rotation.</summary>
        NodeStarting,
        /// <summary>The node is out of rotation, still on the old version.</summary>
        NodeOutOfRotation,
        /// <summary>The node passed the health gate, still out of rotation: the place for custom checks.</summary>
        NodeHealthy,
        /// <summary>The node is back in rotation on the new version.</summary>
        NodeUpgraded,
        /// <summary>The node failed (after the restore attempt).</summary>
        NodeFailed,
        Finalizing,
        Completed,
        Halted,
        /// <summary>
        /// A step's step-begin line is in the journal; its work has not started (<see cref="UpgradeEvent.Step"/> names it).
        /// Pre-stage steps run in parallel, so these may come from several threads at once.
        /// </summary>
        StepStarting,
        /// <summary>A step's step-done line is in the journal (<see cref="UpgradeEvent.Step"/> names it).</summary>
        StepDone,
        /// <summary>-StopAfter was reached: the run ends with the cluster MIXED, upgrade mode on, every node in rotation.</summary>
        Paused,
    }

    /// <summary>What a hook receives.</summary>
    public sealed class UpgradeEvent
    {
        public UpgradeEvent(UpgradePhase phase, string cluster, string? node, string message)
        {
            Phase = phase;
            Cluster = cluster;
            Node = node;
            Message = message;
        }

        public UpgradePhase Phase { get; }
        public string Cluster { get; }
        public string? Node { get; }
        public string Message { get; }
        public string? TargetVersion { get; set; }
        /// <summary>Set on StepStarting and StepDone: the journal's step key, e.g. <c>node-1/stop</c> or <c>cluster/finalize</c>.</summary>
        public string? Step { get; set; }
        /// <summary>Set on Completed and Halted.</summary>
        public UpgradeReport? Report { get; set; }

        public override string ToString() => $"{Phase} {Node ?? Cluster}: {Message}";
    }

    /// <summary>Runs a hook; the cmdlet maps -Hook script blocks onto this.</summary>
    public delegate Task UpgradeHook(UpgradeEvent upgradeEvent, CancellationToken cancellationToken);

    /// <summary>How to run.</summary>
    public sealed class RollingUpgradeOptions
    {
        /// <summary>Continue the unfinished run in the journal.</summary>
        public bool Resume { get; set; }
        /// <summary>Resume, or take over an upgrade in progress that the journal has no run of, from the real state.</summary>
        public bool Adopt { get; set; }
        public UpgradeHook? Hook { get; set; }
        /// <summary>Who takes the cluster's lock (default: this process on this host).</summary>
        public Journal.LockOwner? Owner { get; set; }
        /// <summary>Upgrade this many nodes (not yet on the target), then pause: cluster MIXED, upgrade mode on, every node in rotation; -Resume does the rest.</summary>
        public int? StopAfter { get; set; }
        /// <summary>
        /// The id a fresh run takes (made with <see cref="RollingUpgradeRunner.NewRunId"/>), so that the caller's -LogPath
        /// log, the journal and the report carry one id; default: a new one. A resumed run keeps the journal run's id.
        /// </summary>
        public string? RunId { get; set; }
        /// <summary>Told the run's id once it is known (the proposed <see cref="RunId"/>, or the resumed run's), before the journal is written.</summary>
        public System.Action<string>? OnRunId { get; set; }
    }

    /// <summary>The run stopped in a safe, documented state. <see cref="Report"/> says where; the message says what to do next.</summary>
    public sealed class UpgradeHaltedException : BbException
    {
        public UpgradeHaltedException(string errorId, BbErrorCategory category, string message, UpgradeReport report, Exception? inner)
            : base(errorId, category, message, report.Cluster, inner)
        {
            Report = report;
            RecommendedAction = report.NextStep;
        }

        public UpgradeReport Report { get; }
    }
}
