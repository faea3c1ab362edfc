using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Completion
{
    /// <summary>
    /// Completes cluster states (for Wait-BbClusterState) or node states (elsewhere); each result's tooltip says what
    /// the state means, and Unknown (the module's name for a state it does not know) is never offered. The state
    /// parameters are strings parsed by <see cref="StateNames"/>: PowerShell completes an enum-typed parameter from the
    /// enum's names itself and never asks an argument completer.
    /// </summary>
    public sealed class StateCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var type = commandName.EndsWith("ClusterState", StringComparison.OrdinalIgnoreCase) ? typeof(ClusterState) : typeof(NodeState);
            return CompletionText.Match(wordToComplete, StateNames.Known(type).Select(n => (n, n + ": " + StateNames.Meaning(type, n))));
        }
    }

    /// <summary>The names and meanings of cluster and node states, and the parsing of a -State argument.</summary>
    internal static class StateNames
    {
        private static readonly IReadOnlyDictionary<string, string> ClusterMeaning = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["STABLE"] = "every node on one version, upgrade mode off.",
            ["READY_TO_UPGRADE"] = "upgrade mode on; nodes may be upgraded one at a time.",
            ["MIXED"] = "nodes run different versions (an upgrade is in progress).",
            ["READY_TO_RUN_UPGRADE_TASKS"] = "every node runs the new version; Complete-BbRollingUpgrade finalizes.",
            ["RUNNING_UPGRADE_TASKS"] = "the new version's finalization tasks run.",
            ["UPGRADE_TASKS_FAILED"] = "the finalization tasks failed; see the node logs, then Resume-BbUpgradeTask.",
        };

        private static readonly IReadOnlyDictionary<string, string> NodeMeaning = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["STARTING"] = "starting up.",
            ["ACTIVE"] = "serving requests.",
            ["DRAINING"] = "finishing its requests before it stops.",
            ["TERMINATING"] = "shutting down.",
            ["OFFLINE"] = "stopped (or unreachable).",
            ["ERROR"] = "failed; look at its atlassian-bitbucket.log.",
            ["RUNNING_FINALIZE_UPGRADE_TASKS"] = "running the finalization tasks.",
            ["UPGRADE_TASKS_FAILED"] = "its finalization tasks failed; look at its atlassian-bitbucket.log.",
        };

        /// <summary>The states Bitbucket reports, in the enum's order; without Unknown.</summary>
        public static IEnumerable<string> Known(Type stateType) =>
            Enum.GetNames(stateType).Where(n => !string.Equals(n, "Unknown", StringComparison.Ordinal));

        public static string Meaning(Type stateType, string name)
        {
            var table = stateType == typeof(ClusterState) ? ClusterMeaning : NodeMeaning;
            var what = stateType == typeof(ClusterState) ? "Cluster: " : "Node: ";
            return table.TryGetValue(name, out var m) ? what + m : what + "a state Bitbucket reports.";
        }

        /// <summary>
        /// Parses -State values by name (any case). Null and a message naming the bad value and the valid ones when a
        /// value is not a state name (numbers too: "2" is no state), or is Unknown and <paramref name="allowUnknown"/> is false.
        /// </summary>
        public static T[]? TryParse<T>(IEnumerable<string> values, bool allowUnknown, out string? invalid, out string message) where T : struct, Enum
        {
            var result = new List<T>();
            foreach (var raw in values)
            {
                var text = (raw ?? "").Trim();
                var name = Enum.GetNames(typeof(T)).FirstOrDefault(n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
                var isUnknown = string.Equals(name, "Unknown", StringComparison.Ordinal);
                if (name is null || (isUnknown && !allowUnknown))
                {
                    invalid = raw;
                    var what = typeof(T) == typeof(ClusterState) ? "cluster state" : "node state";
                    message = isUnknown
                        ? $"-State Unknown is not a state Bitbucket reports (the module shows Unknown for a state it cannot read), so it cannot be waited for. Wait for one of: {string.Join(", ", Known(typeof(T)))}."
                        : $"-State '{raw}' is not a {what}. Use one of: {string.Join(", ", allowUnknown ? Enum.GetNames(typeof(T)) : Known(typeof(T)))}.";
                    return null;
                }
                var value = (T)Enum.Parse(typeof(T), name);
                if (!result.Contains(value)) result.Add(value);
            }
            invalid = null;
            message = "";
            return result.ToArray();
        }
    }
}
