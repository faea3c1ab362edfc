using System.Management.Automation;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Gets the rolling-upgrade status of the cluster: state, upgrade mode, original version, nodes and the actions allowed now.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BbClusterStatus", HelpUri = HelpLinks.CommandsBase + "Get-BbClusterStatus.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class GetBbClusterStatusCommand : BbClusterCmdlet
    {
        protected override void ProcessRecord()
        {
            var cluster = ReadCluster();
            // A cluster in a rolling upgrade (upgrade mode on, or finalizing) may be a run that stopped half-way: the
            // API knows nothing of it, the run's journal does. Say where to look before the admin acts on the state.
            if (cluster.UpgradeModeEnabled || cluster.State != ClusterState.STABLE)
                WriteWarning($"The cluster is in a rolling upgrade ({cluster.StateText ?? cluster.State.ToString()}, upgrade mode {(cluster.UpgradeModeEnabled ? "on" : "off")}). " +
                    "If BitbucketZdu ran it, 'Get-BbRollingUpgrade -ProfilePath <profile>' shows whether that run is still going, halted or interrupted, " +
                    "which node is out of rotation and the command that finishes it (usually Invoke-BbRollingUpgrade -ProfilePath <profile> -Resume).");
            WriteObject(cluster);
        }
    }
}
