using System;
using System.Management.Automation;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Puts nodes back into a load balancer and waits until it reports them healthy.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "BbNodeToLoadBalancer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = NodeSet, HelpUri = HelpLinks.CommandsBase + "Add-BbNodeToLoadBalancer.md")]
    [OutputType(typeof(LoadBalancerChangeResult))]
    public sealed class AddBbNodeToLoadBalancerCommand : BbLoadBalancerCmdlet
    {
        /// <summary>Seconds the load balancer may take to report the member healthy; after that it is taken out again.</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int HealthTimeoutSec { get; set; } = 300;

        protected override void ProcessRecord() =>
            ChangeEach((controller, member, node, host, ct) => controller.AddAsync(member,
                new LoadBalancerOptions { HealthTimeout = TimeSpan.FromSeconds(HealthTimeoutSec), NodeName = node }, host, ct));
    }
}
