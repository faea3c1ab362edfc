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
        /// <summary>The states to wait for (any one of them ends the wait).</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(StateCompleter))]
        public ClusterState[] State { get; set; } = Array.Empty<ClusterState>();

        protected override void ProcessRecord()
        {
            var timeout = Timeout;
            var poll = Poll;
            WriteObject(RunApi((client, bridge, ct) => ZduWaiter.WaitForClusterStateAsync(client, State, timeout, bridge, poll, ct)));
        }
    }
}
