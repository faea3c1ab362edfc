using BitbucketZdu.Completion;
using System.Linq;
using System.Management.Automation;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Gets the members of a load balancer's backend with their state, health and active connections.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BbLoadBalancerMember", HelpUri = HelpLinks.CommandsBase + "Get-BbLoadBalancerMember.md")]
    [OutputType(typeof(LoadBalancerMember))]
    public sealed class GetBbLoadBalancerMemberCommand : BbCmdlet
    {
        /// <summary>The load balancer (New-BbLoadBalancer's output).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ValidateNotNull]
        public LoadBalancerDescription LoadBalancer { get; set; } = null!;

        /// <summary>Only members whose name matches (wildcards allowed).</summary>
        [Parameter(Position = 1)]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(LoadBalancerMemberCompleter))]
        public string[]? Name { get; set; }

        protected override void ProcessRecord()
        {
            var description = LoadBalancer;
            var members = RunOrThrow(async (_, ct) =>
            {
                using var lb = LoadBalancerFactory.Create(description);
                return await lb.GetMembersAsync(ct).ConfigureAwait(false);
            }, description.DisplayName);
            var patterns = Name?.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
            foreach (var m in members)
                if (patterns is null || patterns.Any(p => p.IsMatch(m.Name)))
                    WriteObject(m);
        }
    }
}
