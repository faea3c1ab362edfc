using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Enables upgrade mode so that nodes can be upgraded one at a time to a newer bug-fix release (POST /rest/zdu/start).</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Enable, "BbUpgradeMode", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.CommandsBase + "Enable-BbUpgradeMode.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class EnableBbUpgradeModeCommand : BbClusterActionCmdlet
    {
        protected override ZduAction Action => ZduAction.Start;

        protected override string ActionDescription => "Enable upgrade mode";

        protected override Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken) => client.StartAsync(cancellationToken);
    }
}
