namespace BitbucketZdu.Core.LoadBalancers.Apache
{
    internal sealed class ApacheKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.Apache;
        public override string EndpointHelp => "the balancer-manager URL (https://lb.example.com/balancer-manager)";
        public override string BackendHelp => "the balancer name, without balancer://";
        public override LoadBalancerSecret? Secret { get; } = new LoadBalancerSecret(
            "the balancer-manager's HTTP Basic user name and password, when it asks for them",
            (d, user, password) => { d.UserName = user; d.Password = password; });
        // Atlassian's KB on mod_proxy_balancer for Bitbucket Data Center: HTTP only; use a balancer that does both.
        public override string? SshNotCarried => "Apache mod_proxy_balancer carries HTTP only";
        public override string TemplateSettings => "Endpoint = 'https://lb.example.com/balancer-manager'; Backend = 'bitbucket'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new ApacheBalancerManagerLoadBalancer(description);
    }
}
