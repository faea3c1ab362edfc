using BitbucketZdu.Completion;
using System;
using System.Collections.Generic;
using System.Management.Automation;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Waits until nodes reach one of the given states; takes nodes from Get-BbNode and follows them by address and name, since ids may change on restart.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Wait, "BbNodeState", HelpUri = HelpLinks.CommandsBase + "Wait-BbNodeState.md")]
    [OutputType(typeof(ZduNode))]
    public sealed class WaitBbNodeStateCommand : BbWaitCmdlet
    {
        private readonly List<ZduNodeSelector> _nodes = new List<ZduNodeSelector>();

        /// <summary>The node states to wait for (any one of them ends the wait for a node), by name: ACTIVE, OFFLINE, ... (Tab lists them with their meaning). A node absent from the cluster counts as OFFLINE.</summary>
        /// <remarks>A string, not the NodeState enum: PowerShell completes an enum parameter itself and never shows the completer's meanings.</remarks>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(StateCompleter))]
        public string[] State { get; set; } = Array.Empty<string>();

        private NodeState[] _states = Array.Empty<NodeState>();

        /// <summary>The node's name.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("NodeName")]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string? Name { get; set; }

        /// <summary>The node's IP address (the most stable way to follow a node across restarts).</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        public string? IpAddress { get; set; }

        /// <summary>The node's cluster port, to tell apart two nodes on one address.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        public int? PortNumber { get; set; }

        /// <summary>The node's id; used only when neither -IpAddress nor -Name is given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("NodeId")]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string? Id { get; set; }

        protected override void BeginProcessing()
        {
            var states = StateNames.TryParse<NodeState>(State, allowUnknown: false, out var invalid, out var message);
            if (states is null)
                ThrowError(string.Equals(invalid?.Trim(), "Unknown", StringComparison.OrdinalIgnoreCase) ? "WaitBbNodeStateUnknownState" : "WaitBbNodeStateInvalidState",
                    ErrorCategory.InvalidArgument, message, invalid);
            _states = states!;
        }

        protected override void ProcessRecord()
        {
            if (string.IsNullOrEmpty(Name) && string.IsNullOrEmpty(IpAddress) && string.IsNullOrEmpty(Id))
                ThrowError("WaitBbNodeStateNoNode", ErrorCategory.InvalidArgument,
                    "Say which node to wait for: pipe nodes from Get-BbNode, or give -Name, -IpAddress or -Id.");
            _nodes.Add(new ZduNodeSelector { Id = Id, Name = Name, IpAddress = IpAddress, PortNumber = PortNumber });
        }

        protected override void EndProcessing()
        {
            if (_nodes.Count == 0) return;
            var timeout = Timeout;
            var poll = Poll;
            var states = _states;
            var results = RunApi((client, bridge, ct) => ZduWaiter.WaitForNodeStatesAsync(client, _nodes, states, timeout, bridge,
                r =>
                {
                    // A node never seen (absent from the start) has no object to return; say so instead.
                    if (r.Node is null) bridge.Verbose($"Node {r.Selector} is absent from the cluster: counted as OFFLINE.");
                    else bridge.WriteObject(r.Node);
                }, poll, ct));
            foreach (var r in results)
                if (!r.Reached)
                    WriteError(BbErrors.FromException(ZduWaiter.TimeoutError(r, states, timeout)));
        }
    }
}
