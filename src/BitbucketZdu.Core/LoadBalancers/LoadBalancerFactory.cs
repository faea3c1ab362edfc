using System;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>Creates the provider for a description (through its kind's <see cref="LoadBalancerKindDescriptor"/>).</summary>
    public static class LoadBalancerFactory
    {
        public static ILoadBalancer Create(LoadBalancerDescription description)
        {
            if (description is null) throw new ArgumentNullException(nameof(description));
            return LoadBalancerKinds.Get(description.Kind).Create(description);
        }

        /// <summary>A controller over a new provider for the description (dispose the provider via <see cref="LoadBalancerController.LoadBalancer"/>).</summary>
        public static LoadBalancerController CreateController(LoadBalancerDescription description, Timing.Poller? poller = null) => new LoadBalancerController(Create(description), poller);
    }
}
