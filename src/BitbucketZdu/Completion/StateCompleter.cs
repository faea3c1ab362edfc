using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Completion
{
    /// <summary>Completes cluster states (for Wait-BbClusterState) or node states (elsewhere), with what each one means.</summary>
    public sealed class StateCompleter : IArgumentCompleter
    {
        private static readonly IReadOnlyDictionary<string, string> Meaning = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["STABLE"] = "Cluster: every node on one version, upgrade mode off.",
            ["READY_TO_UPGRADE"] = "Cluster: upgrade mode on; nodes may be upgraded one at a time.",
            ["MIXED"] = "Cluster: nodes run different versions (an upgrade is in progress).",
            ["READY_TO_RUN_UPGRADE_TASKS"] = "Cluster: every node runs the new version; Complete-BbRollingUpgrade finalizes.",
            ["RUNNING_UPGRADE_TASKS"] = "Cluster: the new version's finalization tasks run.",
            ["UPGRADE_TASKS_FAILED"] = "The finalization tasks failed; see the node logs.",
            ["STARTING"] = "Node: starting up.",
            ["ACTIVE"] = "Node: serving requests.",
            ["DRAINING"] = "Node: finishing its requests before it stops.",
            ["TERMINATING"] = "Node: shutting down.",
            ["OFFLINE"] = "Node: stopped (or unreachable).",
            ["ERROR"] = "Node: failed; look at its atlassian-bitbucket.log.",
            ["RUNNING_FINALIZE_UPGRADE_TASKS"] = "Node: running the finalization tasks.",
            ["Unknown"] = "A state this module does not know (kept as the server sent it).",
        };

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var type = commandName.EndsWith("ClusterState", StringComparison.OrdinalIgnoreCase) ? typeof(ClusterState) : typeof(NodeState);
            return CompletionText.Match(wordToComplete, Enum.GetNames(type)
                .Select(n => (n, Meaning.TryGetValue(n, out var m) ? n + ": " + m : n)));
        }
    }
}
