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
        protected override void ProcessRecord() => WriteObject(ReadCluster());
    }
}
