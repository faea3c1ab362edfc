using System;
using System.Management.Automation;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Takes nodes out of a load balancer safely: drain, wait until in-flight work finished (or the drain timeout), then maintenance.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "BbNodeFromLoadBalancer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = NodeSet, HelpUri = HelpLinks.CommandsBase + "Remove-BbNodeFromLoadBalancer.md")]
    [OutputType(typeof(LoadBalancerChangeResult))]
    public sealed class RemoveBbNodeFromLoadBalancerCommand : BbLoadBalancerCmdlet
    {
        /// <summary>Seconds in-flight work may take to finish before the member is taken out anyway (default: the load balancer's own, else 300).</summary>
        [Parameter]
        [ValidateRange(0, 86400)]
        public int? DrainTimeoutSec { get; set; }

        /// <summary>At most this many members may be out of rotation at once, including this one (default 1).</summary>
        [Parameter]
        [ValidateRange(1, 1000)]
        public int MaxMembersOut { get; set; } = 1;

        protected override void ProcessRecord() =>
            ChangeEach((controller, member, node, host, ct) => controller.RemoveAsync(member, new LoadBalancerOptions
            {
                DrainTimeout = DrainTimeoutSec is int s ? TimeSpan.FromSeconds(s) : (TimeSpan?)null,
                MaxMembersOut = MaxMembersOut,
                NodeName = node,
            }, host, ct));
    }
}
