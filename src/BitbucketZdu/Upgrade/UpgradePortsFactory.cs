using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Upgrade
{
    /// <summary>
    /// THE SEAM between the upgrade cmdlets and the real world. The cmdlets build their ports with
    /// <see cref="Current"/>. The default binds the cluster API (ZduClient, one per node URL for the nodes' own views)
    /// and the journal store (a folder, or an Azure blob container: <see cref="JournalStoreFactory"/>); the load-balancer (<see cref="IRotation"/>) and node-host (<see cref="INodeHost"/>) ports
    /// are bound by <see cref="RotationFactory"/> (<see cref="LoadBalancerRotation"/> over Core/LoadBalancers) and
    /// <see cref="NodeHostFactory"/> (<see cref="NodeStepsHost"/> over Core/Nodes, through the shell the cmdlet opens).
    /// Tests replace <see cref="Current"/> (or one of the two factories) with in-memory fakes.
    /// </summary>
    internal static class UpgradePortsFactory
    {
        public static IUpgradePortsFactory Current { get; set; } = new DefaultUpgradePortsFactory();

        /// <summary>Binds <see cref="IRotation"/> for a profile: the load-balancer providers of Core/LoadBalancers.</summary>
        public static Func<ClusterProfile, UpgradeConnectionOptions, IRotation> RotationFactory { get; set; } =
            (p, o) => new LoadBalancerRotation(p, credentials: o.LoadBalancerCredentials);

        /// <summary>Binds <see cref="INodeHost"/> for a profile: the node steps of Core/Nodes over each node's shell.</summary>
        public static Func<ClusterProfile, UpgradeConnectionOptions, INodeHost> NodeHostFactory { get; set; } =
            (p, o) => new NodeStepsHost(p, o.OpenShell ?? ((node, ct) => Task.FromResult(RemotingTarget.Parse(node).OpenDirect()
                ?? throw new BbException("UpgradeRemotingUnavailable", BbErrorCategory.NotInstalled,
                    $"{node.Place}.Remoting '{node.RemotingTarget}' needs a PowerShell session, which only the cmdlets open."))),
                transport: o.TransportFor(p));
    }

    internal sealed class DefaultUpgradePortsFactory : IUpgradePortsFactory
    {
        public UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options)
        {
            var owned = new Disposables();
            // The journal first: its settings are validated before anything else is opened.
            var journal = JournalStoreFactory.Create(profile, options);
            if (journal is IDisposable j) owned.Add(j);
            var credential = options.Credential ?? (options.ClusterClient as ZduClient)?.Options.Credential
                ?? throw new BbException("UpgradeNoCredential", BbErrorCategory.AuthenticationError,
                    $"No credential for {profile.BaseUrl}: pass -Credential (a Bitbucket system administrator) or connect first with Connect-BbCluster.");
            // One TLS trust and proxy for every call: the cluster API, each node's own API and /status.
            var transport = options.TransportFor(profile);
            ZduClientOptions ClientOptions(Uri url) => new ZduClientOptions(url, credential)
            {
                SkipCertificateCheck = transport.SkipCertificateCheck,
                TrustedCertificatePath = transport.TrustedCertificatePath,
                Proxy = transport.Proxy,
                ProxyCredential = transport.ProxyCredential,
            };
            IZduClient cluster;
            if (options.ClusterClient is not null) cluster = options.ClusterClient;
            else
            {
                var c = new ZduClient(ClientOptions(profile.BaseUrl));
                owned.Add(c);
                cluster = c;
            }
            var perNode = new ConcurrentDictionary<string, IZduClient>(StringComparer.OrdinalIgnoreCase);
            IZduClient NodeApi(NodeProfile n) => perNode.GetOrAdd(n.Name, _ =>
            {
                var c = new ZduClient(ClientOptions(n.Url));
                owned.Add(c);
                return c;
            });
            var rotation = UpgradePortsFactory.RotationFactory(profile, options);
            if (rotation is IDisposable r) owned.Add(r);
            var nodes = UpgradePortsFactory.NodeHostFactory(profile, options);
            if (nodes is IDisposable n) owned.Add(n);
            return new UpgradePorts(cluster, NodeApi, rotation, nodes, journal, UpgradeClock.System, owned);
        }

        private sealed class Disposables : IDisposable
        {
            private readonly ConcurrentBag<IDisposable> _items = new ConcurrentBag<IDisposable>();
            public void Add(IDisposable d) => _items.Add(d);

            public void Dispose()
            {
                foreach (var d in _items) d.Dispose();
            }
        }
    }
}
