namespace BitbucketZdu.Core.LoadBalancers.HAProxy
{
    internal sealed class HAProxyKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.HAProxy;
        public override string EndpointHelp => "the runtime API admin socket: unix:///run/haproxy.sock, tcp://host:port or host:port; one per instance of an HA pair";
        public override string BackendHelp => "the HAProxy backend";
        public override bool MultipleEndpoints => true;
        public override string TemplateSettings => "AdminSocket = '127.0.0.1:9999'; Backend = 'bitbucket'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new HAProxyLoadBalancer(description);
    }
}
