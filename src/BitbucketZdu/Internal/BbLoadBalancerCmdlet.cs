using BitbucketZdu.Completion;
using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.LoadBalancers;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// Base of the cmdlets that act on a load balancer described by New-BbLoadBalancer: one provider per invocation,
    /// nodes from the pipeline by property name (Name, IpAddress, PortNumber of Get-BbNode's objects) or members by name.
    /// </summary>
    public abstract class BbLoadBalancerCmdlet : BbCmdlet, IDisposable
    {
        protected const string NodeSet = "Node";
        protected const string MemberSet = "Member";

        private ILoadBalancer? _provider;

        /// <summary>The load balancer (New-BbLoadBalancer's output).</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNull]
        public LoadBalancerDescription LoadBalancer { get; set; } = null!;

        /// <summary>The node's name (Get-BbNode output binds by property name).</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = NodeSet, ValueFromPipelineByPropertyName = true)]
        [Alias("NodeName")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string Name { get; set; } = null!;

        /// <summary>The node's IP address, used to match members by address.</summary>
        [Parameter(ParameterSetName = NodeSet, ValueFromPipelineByPropertyName = true)]
        public string? IpAddress { get; set; }

        /// <summary>The node's Bitbucket port, used to tell members on one host apart.</summary>
        [Parameter(ParameterSetName = NodeSet, ValueFromPipelineByPropertyName = true)]
        public int? PortNumber { get; set; }

        /// <summary>Load-balancer member names, used as they are (no node mapping).</summary>
        [Parameter(Mandatory = true, ParameterSetName = MemberSet, ValueFromPipeline = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(LoadBalancerMemberCompleter))]
        public string[] Member { get; set; } = null!;

        protected ILoadBalancer Provider => _provider ??= LoadBalancerFactory.Create(LoadBalancer);

        /// <summary>The member names this pipeline item stands for, with the node name for results.</summary>
        protected async Task<(string Member, string? Node)[]> ResolveAsync(CancellationToken cancellationToken)
        {
            if (ParameterSetName == MemberSet)
                return Array.ConvertAll(Member, m => (m, (string?)null));
            var members = await Provider.GetMembersAsync(cancellationToken).ConfigureAwait(false);
            var name = MemberResolver.Resolve(LoadBalancer, new NodeRef(Name, IpAddress, PortNumber), members);
            return new[] { (name, (string?)Name) };
        }

        /// <summary>Runs <paramref name="change"/> for every member this pipeline item stands for and writes the results (none under -WhatIf).</summary>
        protected void ChangeEach(Func<LoadBalancerController, string, string?, PipelineBridge, CancellationToken, Task<LoadBalancerChangeResult>> change)
        {
            RunOrWriteError(async (bridge, ct) =>
            {
                var controller = new LoadBalancerController(Provider);
                foreach (var (member, node) in await ResolveAsync(ct).ConfigureAwait(false))
                {
                    var result = await change(controller, member, node, bridge, ct).ConfigureAwait(false);
                    if (!result.WhatIf) bridge.WriteObject(result);
                }
            }, ParameterSetName == MemberSet ? string.Join(",", Member) : Name);
        }

        protected override void EndProcessing()
        {
            _provider?.Dispose();
            _provider = null;
            base.EndProcessing();
        }

        /// <summary>PowerShell disposes cmdlets after a terminating error or Ctrl+C too.</summary>
        public void Dispose()
        {
            _provider?.Dispose();
            _provider = null;
        }
    }
}
