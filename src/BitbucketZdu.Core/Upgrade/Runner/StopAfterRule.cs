using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>
    /// -StopAfter n: upgrade n nodes (those not yet on the target), then pause with the cluster MIXED, upgrade mode on
    /// and every node in rotation, so a canary can be watched; -Resume does the rest.
    /// </summary>
    internal sealed class StopAfterRule
    {
        private readonly int? _count;
        private readonly HashSet<string> _later;

        public StopAfterRule(UpgradePlan plan, int? stopAfter)
        {
            if (stopAfter is int n && n < 1)
                throw new BbException("UpgradeStopAfterInvalid", BbErrorCategory.InvalidArgument, $"-StopAfter must be 1 or more (it was {n}).");
            _count = stopAfter;
            var toUpgrade = plan.Nodes.Where(x => x.Version != plan.TargetVersion).Select(x => x.Name).ToList();
            _later = new HashSet<string>(stopAfter is int k && k < toUpgrade.Count ? toUpgrade.Skip(k) : Enumerable.Empty<string>(), StringComparer.OrdinalIgnoreCase);
        }

        /// <summary>True when the run will pause before every node is done.</summary>
        public bool Pauses => _later.Count > 0;

        /// <summary>The nodes this run leaves for -Resume.</summary>
        public IReadOnlyCollection<string> LaterNodes => _later;

        /// <summary>Whether this run carries out <paramref name="step"/> (pre-staging runs on every node; later nodes' steps and finalizing wait).</summary>
        public bool RunsNow(PlanStep step) =>
            !Pauses || (step.Node is null
                ? step.Kind != StepKind.Finalize && step.Kind != StepKind.WaitStable
                : step.Kind == StepKind.PreStage || !_later.Contains(step.Node));

        public string PauseAction =>
            string.Format(CultureInfo.InvariantCulture,
                "pause after {0} node(s) (-StopAfter {0}): the cluster stays MIXED with upgrade mode on and every node in rotation; " +
                "Invoke-BbRollingUpgrade -Resume upgrades {1} and finalizes", _count, string.Join(", ", _later));

        /// <summary>True once <paramref name="count"/> nodes were upgraded by this run and a later node is next.</summary>
        public bool PauseNow(IEnumerable<NodeUpgradeReport> done, string? nextNode) =>
            Pauses && nextNode is not null && _later.Contains(nextNode)
            && done.Count(r => r.Outcome == NodeOutcome.Upgraded) >= _count;
    }
}
