using System;
using System.Collections.Generic;
using System.Linq;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>What a journal line records.</summary>
    public static class JournalKinds
    {
        public const string RunStarted = "run-started";
        public const string RunResumed = "run-resumed";
        public const string StepBegin = "step-begin";
        public const string StepDone = "step-done";
        public const string StepSkipped = "step-skipped";
        public const string StepFailed = "step-failed";
        public const string RollbackBegin = "rollback-begin";
        public const string RollbackDone = "rollback-done";
        public const string RollbackFailed = "rollback-failed";
        public const string RunHalted = "run-halted";
        public const string RunCancelled = "run-cancelled";
        public const string RunCompleted = "run-completed";
        /// <summary>-StopAfter reached: the run is not finished; -Resume continues it.</summary>
        public const string RunPaused = "run-paused";
    }

    /// <summary>
    /// One line of a cluster's journal. Holds names, versions, step keys and messages only: never a credential or
    /// header (the engine never gives it one).
    /// </summary>
    public sealed class JournalEntry
    {
        public DateTimeOffset Time { get; set; }
        public string RunId { get; set; } = "";
        public string Kind { get; set; } = "";
        /// <summary>The plan step key, e.g. <c>node-1/stop</c>, or null for run-level lines.</summary>
        public string? Step { get; set; }
        public string? Node { get; set; }
        public string? Message { get; set; }
        public string? FromVersion { get; set; }
        public string? TargetVersion { get; set; }
        /// <summary>On run-started: the node order of the plan (resume keeps it even when loads changed).</summary>
        public List<string>? NodeOrder { get; set; }
        /// <summary>On run-started/run-resumed: -MaxUnavailable, how many nodes the run takes out at once (a resumed run re-forms its batches from the real state).</summary>
        public int? MaxUnavailable { get; set; }
        /// <summary>Where the run ran (host name and process id), for humans reading the journal.</summary>
        public string? Host { get; set; }
        public int? Pid { get; set; }
        /// <summary>On step-done: how long the step took, in milliseconds.</summary>
        public long? DurationMs { get; set; }
    }

    /// <summary>The last run found in a journal, as far as resume and adoption need it.</summary>
    public sealed class JournalRun
    {
        private JournalRun(IReadOnlyList<JournalEntry> entries)
        {
            Entries = entries;
            var start = entries[0];
            RunId = start.RunId;
            TargetVersion = start.TargetVersion;
            FromVersion = start.FromVersion;
            NodeOrder = start.NodeOrder ?? new List<string>();
            var last = entries[entries.Count - 1];
            Completed = entries.Any(e => e.Kind == JournalKinds.RunCompleted);
            LastEntry = last;
        }

        /// <summary>
        /// An upgrade in progress taken over from the real state (-Adopt) with no journal run for it: the run starts a
        /// journal run of its own (run-started), keeping this node order and original version.
        /// </summary>
        public static JournalRun FromRealState(string runId, string fromVersion, string targetVersion, IReadOnlyList<string> nodeOrder) =>
            new JournalRun(new[] { new JournalEntry { RunId = runId, Kind = JournalKinds.RunStarted, FromVersion = fromVersion, TargetVersion = targetVersion, NodeOrder = nodeOrder.ToList() } })
            {
                IsFromRealState = true,
            };

        /// <summary>True for a run built by <see cref="FromRealState"/>: nothing of it is in the journal yet.</summary>
        public bool IsFromRealState { get; private set; }
        public string RunId { get; }
        public string? TargetVersion { get; }
        public string? FromVersion { get; }
        public IReadOnlyList<string> NodeOrder { get; }
        public bool Completed { get; }
        public JournalEntry LastEntry { get; }
        public IReadOnlyList<JournalEntry> Entries { get; }

        /// <summary>True when this run asked the API to enable upgrade mode (a begin is enough: the POST may have landed before a crash).</summary>
        public bool StartedUpgradeMode => Entries.Any(e => e.Step == PlanStepKeys.EnableUpgradeMode && (e.Kind == JournalKinds.StepBegin || e.Kind == JournalKinds.StepDone));

        public bool IsDone(string step) => Entries.Any(e => e.Step == step && e.Kind == JournalKinds.StepDone);

        /// <summary>The last run (from its run-started line to the end), or null for an empty journal.</summary>
        public static JournalRun? Last(IReadOnlyList<JournalEntry> entries)
        {
            var startIndex = -1;
            for (var i = entries.Count - 1; i >= 0; i--)
            {
                if (entries[i].Kind == JournalKinds.RunStarted)
                {
                    startIndex = i;
                    break;
                }
            }
            if (startIndex < 0) return null;
            var runId = entries[startIndex].RunId;
            return new JournalRun(entries.Skip(startIndex).Where(e => e.RunId == runId).ToList());
        }
    }

    /// <summary>Step keys that are not per node.</summary>
    public static class PlanStepKeys
    {
        public const string EnableUpgradeMode = "cluster/enable-upgrade-mode";
        public const string Finalize = "cluster/finalize";
        public const string WaitStable = "cluster/wait-stable";
    }
}
