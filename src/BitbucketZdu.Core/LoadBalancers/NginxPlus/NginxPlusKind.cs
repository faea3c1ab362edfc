namespace BitbucketZdu.Core.LoadBalancers.NginxPlus
{
    internal sealed class NginxPlusKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.NginxPlus;
        public override string EndpointHelp => "the NGINX Plus API URL (https://lb.example.com:8080/api)";
        public override string BackendHelp => "the NGINX Plus upstream";
        public override LoadBalancerSecret? Secret { get; } = new LoadBalancerSecret(
            "the API's HTTP Basic user name and password, when the API asks for them",
            (d, user, password) => { d.UserName = user; d.Password = password; });
        // The provider drives /api/N/http/upstreams only; NGINX Plus's stream upstreams (/api/N/stream/upstreams) are not driven.
        public override string? SshNotCarried => "this module drives NGINX Plus's http upstreams only, not its stream upstreams";
        public override string TemplateSettings => "Endpoint = 'https://lb.example.com:8080/api'; Backend = 'bitbucket'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new NginxPlusLoadBalancer(description);
    }
}
