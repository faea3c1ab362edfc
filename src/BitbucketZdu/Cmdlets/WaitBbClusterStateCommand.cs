using BitbucketZdu.Completion;
using System;
using System.Management.Automation;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Waits until the cluster reaches one of the given rolling-upgrade states, with progress and a timeout.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Wait, "BbClusterState", HelpUri = HelpLinks.CommandsBase + "Wait-BbClusterState.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class WaitBbClusterStateCommand : BbWaitCmdlet
    {
        /// <summary>The cluster states to wait for (any one of them ends the wait), by name: STABLE, MIXED, ... (Tab lists them with their meaning).</summary>
        /// <remarks>A string, not the ClusterState enum: PowerShell completes an enum parameter itself and never shows the completer's meanings.</remarks>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(StateCompleter))]
        public string[] State { get; set; } = Array.Empty<string>();

        private ClusterState[] _states = Array.Empty<ClusterState>();

        protected override void BeginProcessing()
        {
            var states = StateNames.TryParse<ClusterState>(State, allowUnknown: false, out var invalid, out var message);
            if (states is null)
                ThrowError(string.Equals(invalid?.Trim(), "Unknown", StringComparison.OrdinalIgnoreCase) ? "WaitBbClusterStateUnknownState" : "WaitBbClusterStateInvalidState",
                    ErrorCategory.InvalidArgument, message, invalid);
            _states = states!;
        }

        protected override void ProcessRecord()
        {
            var timeout = Timeout;
            var poll = Poll;
            var states = _states;
            WriteObject(RunApi((client, bridge, ct) => ZduWaiter.WaitForClusterStateAsync(client, states, timeout, bridge, poll, ct)));
        }
    }
}
