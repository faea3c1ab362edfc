using BitbucketZdu.Completion;
using System;
using System.Linq;
using System.Management.Automation;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;
using BitbucketZdu.Models;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Stops Bitbucket on a node gracefully (service or bin/stop-bitbucket.sh) and waits for the process to exit.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Stop, "BbNode", DefaultParameterSetName = HostNameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Stop-BbNode.md")]
    [OutputType(typeof(NodeStepResult))]
    public sealed class StopBbNodeCommand : BbNodeCmdlet
    {
        /// <summary>How long to wait for the process to exit (and the cluster to show OFFLINE).</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 300;

        /// <summary>Kill the process when the graceful stop times out.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>Also wait until the cluster (Connect-BbCluster or -Connection) shows the node OFFLINE.</summary>
        [Parameter]
        public SwitchParameter WaitForOffline { get; set; }

        /// <summary>The cluster node id to watch with -WaitForOffline (default: the node whose address is -HostName).</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string? NodeId { get; set; }

        /// <summary>The cluster connection for -WaitForOffline (default: the one from Connect-BbCluster).</summary>
        [Parameter]
        public BbConnection? Connection { get; set; }

        protected override void ProcessRecord()
        {
            var options = new NodeStopOptions { Timeout = TimeSpan.FromSeconds(TimeoutSec), Kill = Force };
            if (WaitForOffline)
            {
                var connection = Connection ?? ConnectionStore.Current;
                if (connection is null)
                    ThrowError("StopBbNodeNotConnected", ErrorCategory.ConnectionError,
                        "-WaitForOffline watches the cluster: run Connect-BbCluster first or pass -Connection.");
                var client = connection!.Client;
                var node = NodeName;
                var id = NodeId;
                options.WaitUntilOffline = async ct =>
                {
                    var cluster = await client.GetClusterAsync(ct).ConfigureAwait(false);
                    var match = cluster.Nodes.FirstOrDefault(n => id is not null ? n.Id == id : n.IpAddress == node || n.Name == node);
                    return match is null || match.State == NodeState.OFFLINE;
                };
            }
            RunStep("Stop Bitbucket" + (Force ? " (kill it if it does not stop in time)" : ""), async (steps, _, ct) =>
                await steps.StopAsync(await steps.DiscoverAsync(InstallDir, ct).ConfigureAwait(false), options, ct).ConfigureAwait(false));
        }
    }
}
