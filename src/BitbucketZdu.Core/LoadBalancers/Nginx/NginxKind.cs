using System.Collections.Generic;

namespace BitbucketZdu.Core.LoadBalancers.Nginx
{
    internal sealed class NginxKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.Nginx;
        public override string EndpointHelp => "the config file that holds the upstream";
        public override string BackendHelp => "the NGINX upstream";
        public override IReadOnlyList<LoadBalancerSetting> Settings { get; } = new[]
        {
            LoadBalancerSetting.Text("NginxCommand", "The nginx command line for -t and -s reload (e.g. '/usr/sbin/nginx -c /etc/nginx/nginx.conf').", (d, v) => d.NginxCommand = v),
            LoadBalancerSetting.Text("NginxPidFile", "The master's pid file when it is not the config's 'pid' (default /run/nginx.pid).", (d, v) => d.NginxPidFile = v),
        };
        public override string TemplateSettings => "Endpoint = '/etc/nginx/conf.d/bitbucket-upstream.conf'; Backend = 'bitbucket'; NginxCommand = 'nginx'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new NginxLoadBalancer(description);
    }
}
