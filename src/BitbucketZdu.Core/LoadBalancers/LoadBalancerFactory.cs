using System;
using BitbucketZdu.Core.LoadBalancers.Apache;
using BitbucketZdu.Core.LoadBalancers.AzureAppGateway;
using BitbucketZdu.Core.LoadBalancers.HAProxy;
using BitbucketZdu.Core.LoadBalancers.Nginx;
using BitbucketZdu.Core.LoadBalancers.NginxPlus;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>Creates the provider for a description.</summary>
    public static class LoadBalancerFactory
    {
        public static ILoadBalancer Create(LoadBalancerDescription description)
        {
            if (description is null) throw new ArgumentNullException(nameof(description));
            return description.Kind switch
            {
                LoadBalancerKind.HAProxy => new HAProxyLoadBalancer(description),
                LoadBalancerKind.Nginx => new NginxLoadBalancer(description),
                LoadBalancerKind.NginxPlus => new NginxPlusLoadBalancer(description),
                LoadBalancerKind.Apache => new ApacheBalancerManagerLoadBalancer(description),
                LoadBalancerKind.AzureAppGateway => new AzureAppGatewayLoadBalancer(description),
                _ => throw new ArgumentOutOfRangeException(nameof(description), description.Kind, "Unknown load balancer kind."),
            };
        }

        /// <summary>A controller over a new provider for the description (dispose the provider via <see cref="LoadBalancerController.LoadBalancer"/>).</summary>
        public static LoadBalancerController CreateController(LoadBalancerDescription description) => new LoadBalancerController(Create(description));
    }
}
