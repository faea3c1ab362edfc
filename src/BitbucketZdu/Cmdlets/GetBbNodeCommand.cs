using BitbucketZdu.Completion;
using System;
using System.Linq;
using System.Management.Automation;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Gets the nodes of the cluster as the rolling-upgrade API reports them, filtered by name, state or id.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BbNode", DefaultParameterSetName = FilterSet, HelpUri = HelpLinks.CommandsBase + "Get-BbNode.md")]
    [OutputType(typeof(ZduNode))]
    public sealed class GetBbNodeCommand : BbClusterCmdlet
    {
        private const string FilterSet = "Filter";
        private const string IdSet = "Id";

        /// <summary>Node names; wildcards allowed.</summary>
        [Parameter(Position = 0, ParameterSetName = FilterSet)]
        [Alias("NodeName")]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string[]? Name { get; set; }

        /// <summary>Only nodes in one of these states, by name: ACTIVE, OFFLINE, ... (Tab lists them with their meaning; Unknown finds nodes in a state the module cannot read).</summary>
        /// <remarks>A string, not the NodeState enum: PowerShell completes an enum parameter itself and never shows the completer's meanings.</remarks>
        [Parameter(ParameterSetName = FilterSet)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(StateCompleter))]
        public string[]? State { get; set; }

        private NodeState[]? _states;

        protected override void BeginProcessing()
        {
            if (State is null) return;
            _states = StateNames.TryParse<NodeState>(State, allowUnknown: true, out var invalid, out var message);
            if (_states is null) ThrowError("GetBbNodeInvalidState", ErrorCategory.InvalidArgument, message, invalid);
        }

        /// <summary>Node ids (GET /rest/zdu/nodes/{id}). Ids may change when a node restarts.</summary>
        [Parameter(Mandatory = true, ParameterSetName = IdSet, ValueFromPipelineByPropertyName = true)]
        [Alias("NodeId")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string[] Id { get; set; } = Array.Empty<string>();

        protected override void ProcessRecord()
        {
            if (ParameterSetName == IdSet)
            {
                var client = Client;
                foreach (var id in Id)
                {
                    ZduNode? node = null;
                    if (RunOrWriteError(async (bridge, ct) =>
                        {
                            using (ZduDiagnostics.ReportTo(bridge.Verbose))
                                node = await client.GetNodeAsync(id, ct).ConfigureAwait(false);
                        }, id))
                        WriteObject(node);
                }
                return;
            }

            var cluster = ReadCluster();
            var patterns = Name?.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
            foreach (var node in cluster.Nodes)
            {
                if (patterns is not null && !patterns.Any(p => p.IsMatch(node.Name ?? string.Empty))) continue;
                if (_states is not null && !_states.Contains(node.State)) continue;
                WriteObject(node);
            }

            foreach (var name in Name ?? Array.Empty<string>())
            {
                if (WildcardPattern.ContainsWildcardCharacters(name)) continue;
                if (cluster.Nodes.Any(n => string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase))) continue;
                var known = string.Join(", ", cluster.Nodes.Select(n => n.Name ?? n.Id));
                WriteError(BbErrors.FromException(new BbException("GetBbNodeNotFound", BbErrorCategory.ObjectNotFound,
                    $"No node named '{name}' in the cluster at {Client.BaseUri}. Its nodes: {(known.Length == 0 ? "none" : known)}.", name)));
            }
        }
    }
}
