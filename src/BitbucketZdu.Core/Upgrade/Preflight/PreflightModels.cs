using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;

namespace BitbucketZdu.Core.Upgrade.Preflight
{
    public enum FindingSeverity
    {
        Info,
        Warning,
        /// <summary>The run cannot start.</summary>
        Error,
    }

    /// <summary>One result of a preflight check, with the place in the profile it concerns when there is one.</summary>
    public sealed class PreflightFinding
    {
        public PreflightFinding(FindingSeverity severity, string check, string? target, string? place, string message)
        {
            Severity = severity;
            Check = check;
            Target = target;
            Place = place;
            Message = message;
        }

        public FindingSeverity Severity { get; }
        /// <summary>Stable id of the check: Preflight&lt;Reason&gt; (also the ErrorId when the run refuses to start).</summary>
        public string Check { get; }
        /// <summary>The node, load balancer or URL concerned.</summary>
        public string? Target { get; }
        /// <summary>The place in the profile, e.g. <c>Nodes[1].Members.lb1</c>.</summary>
        public string? Place { get; }
        public string Message { get; }

        public override string ToString() => $"[{Severity}] {(Place is null ? "" : Place + ": ")}{Message}";
    }

    /// <summary>What preflight found. Nothing was changed to find it.</summary>
    public sealed class PreflightResult
    {
        public PreflightResult(IReadOnlyList<PreflightFinding> findings, ZduCluster? cluster, JournalRun? adoptedRun, TimeSpan duration,
            IReadOnlyList<string>? leftOut = null, string? nextCommand = null)
        {
            Findings = findings;
            Cluster = cluster;
            AdoptedRun = adoptedRun;
            Duration = duration;
            LeftOut = leftOut ?? Array.Empty<string>();
            NextCommand = nextCommand;
        }

        /// <summary>Each profile node an earlier run left out (not ACTIVE, or not in rotation), with its state, e.g. "node-2 is OFFLINE, OutOfRotation".</summary>
        public IReadOnlyList<string> LeftOut { get; }
        /// <summary>The one command that continues an interrupted upgrade (-Resume with a journal run, -Adopt without), or null.</summary>
        public string? NextCommand { get; }

        public IReadOnlyList<PreflightFinding> Findings { get; }
        public ZduCluster? Cluster { get; }
        /// <summary>The unfinished run of this tool that a resume continues, or null for a fresh run.</summary>
        public JournalRun? AdoptedRun { get; }
        public TimeSpan Duration { get; }
        public bool Passed => Findings.All(f => f.Severity != FindingSeverity.Error);
        public IEnumerable<PreflightFinding> Errors => Findings.Where(f => f.Severity == FindingSeverity.Error);

        /// <summary>Throws BbException with the first error's check as ErrorId and every error in the message.</summary>
        public void ThrowIfFailed(string cluster)
        {
            if (Passed) return;
            var errors = Errors.ToList();
            // "Nothing was changed" is only true of this run: a node an earlier run left out is named, with its state and
            // the one command that goes on.
            var changed = LeftOut.Count == 0 && Cluster?.UpgradeModeEnabled != true
                ? "nothing was changed."
                : "this run changed nothing, but an earlier run left the cluster mid-upgrade ("
                  + (Cluster?.UpgradeModeEnabled == true ? "upgrade mode is on" : "upgrade mode is off")
                  + string.Concat(LeftOut.Select(n => "; " + n))
                  + $"). Once the problems below are fixed, {NextCommand ?? "Invoke-BbRollingUpgrade -ProfilePath <profile> -Resume"} continues it.";
            throw new BbException(errors[0].Check, BbErrorCategory.InvalidOperation,
                $"Preflight refused the upgrade of cluster '{cluster}'; {changed} {errors.Count} problem{(errors.Count == 1 ? "" : "s")}: "
                + string.Join(" ", errors.Select(e => (e.Place is null ? "" : e.Place + ": ") + e.Message))
                + " Run Test-BbClusterProfile to see every finding.", cluster)
            {
                RecommendedAction = LeftOut.Count == 0 && Cluster?.UpgradeModeEnabled != true
                    ? $"Fix what the findings name ({string.Join(", ", errors.Select(e => e.Place ?? e.Target).Where(x => !string.IsNullOrEmpty(x)).Distinct())}), check with Test-BbClusterProfile, then run the upgrade again."
                    : $"Fix what the findings name, then run {NextCommand ?? "Invoke-BbRollingUpgrade -ProfilePath <profile> -Resume"}.",
            };
        }
    }
}
