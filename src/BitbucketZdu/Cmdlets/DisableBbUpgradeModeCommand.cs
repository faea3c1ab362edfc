using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Disables upgrade mode before any node is upgraded (POST /rest/zdu/cancel).</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Disable, "BbUpgradeMode", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.CommandsBase + "Disable-BbUpgradeMode.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class DisableBbUpgradeModeCommand : BbClusterActionCmdlet
    {
        protected override ZduAction Action => ZduAction.Cancel;

        protected override string ActionDescription => "Disable upgrade mode";

        protected override Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken) => client.CancelAsync(cancellationToken);
    }
}
