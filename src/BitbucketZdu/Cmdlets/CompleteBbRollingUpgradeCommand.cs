using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Finalizes the rolling upgrade once every active node runs the new version (POST /rest/zdu/approve).</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Complete, "BbRollingUpgrade", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(ZduCluster))]
    public sealed class CompleteBbRollingUpgradeCommand : BbClusterActionCmdlet
    {
        protected override ZduAction Action => ZduAction.Approve;

        protected override string ActionDescription => "Finalize the rolling upgrade";

        protected override Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken) => client.ApproveAsync(cancellationToken);
    }
}
