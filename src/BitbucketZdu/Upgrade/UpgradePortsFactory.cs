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
    /// and the file journal; the load-balancer (<see cref="IRotation"/>) and node-host (<see cref="INodeHost"/>) ports
    /// are bound by <see cref="RotationFactory"/> and <see cref="NodeHostFactory"/>, which the adapters over
    /// Core/LoadBalancers and Core/Nodes fill in after those areas merge. Until then they answer "not wired", so
    /// preflight refuses honestly. Tests replace <see cref="Current"/> with in-memory fakes.
    /// </summary>
    internal static class UpgradePortsFactory
    {
        public static IUpgradePortsFactory Current { get; set; } = new DefaultUpgradePortsFactory();

        /// <summary>Binds <see cref="IRotation"/> for a profile: the load-balancer providers of Core/LoadBalancers.</summary>
        public static Func<ClusterProfile, UpgradeConnectionOptions, IRotation> RotationFactory { get; set; } =
            (p, o) => new LoadBalancerRotation(p);

        /// <summary>Binds <see cref="INodeHost"/> for a profile (adapter over Core/Nodes shells; to be filled in).</summary>
        public static Func<ClusterProfile, UpgradeConnectionOptions, INodeHost> NodeHostFactory { get; set; } =
            (p, o) => new UnwiredNodeHost();
    }

    internal sealed class DefaultUpgradePortsFactory : IUpgradePortsFactory
    {
        public UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options)
        {
            var owned = new Disposables();
            var credential = options.Credential ?? (options.ClusterClient as ZduClient)?.Options.Credential
                ?? throw new BbException("UpgradeNoCredential", BbErrorCategory.AuthenticationError,
                    $"No credential for {profile.BaseUrl}: pass -Credential (a Bitbucket system administrator) or connect first with Connect-BbCluster.");
            IZduClient cluster;
            if (options.ClusterClient is not null) cluster = options.ClusterClient;
            else
            {
                var c = new ZduClient(new ZduClientOptions(profile.BaseUrl, credential) { SkipCertificateCheck = options.SkipCertificateCheck });
                owned.Add(c);
                cluster = c;
            }
            var perNode = new ConcurrentDictionary<string, IZduClient>(StringComparer.OrdinalIgnoreCase);
            IZduClient NodeApi(NodeProfile n) => perNode.GetOrAdd(n.Name, _ =>
            {
                var c = new ZduClient(new ZduClientOptions(n.Url, credential) { SkipCertificateCheck = options.SkipCertificateCheck });
                owned.Add(c);
                return c;
            });
            var journal = new FileJournalStore(options.JournalPath ?? profile.JournalPath ?? FileJournalStore.DefaultDirectory);
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

    /// <summary>Placeholder until the load-balancer adapter is wired: probes report it, changes refuse.</summary>
    internal sealed class UnwiredRotation : IRotation
    {
        internal const string Message = "The load-balancer adapter is not wired into the upgrade cmdlets in this build (UpgradePortsFactory.RotationFactory).";

        public Task<RotationProbe> ProbeAsync(NodeProfile node, CancellationToken ct) =>
            Task.FromResult(new RotationProbe { Reachable = false, Problem = Message });

        public Task TakeOutAsync(NodeProfile node, TimeSpan drainTimeout, CancellationToken ct) => throw Missing();
        public Task PutBackAsync(NodeProfile node, TimeSpan healthyTimeout, CancellationToken ct) => throw Missing();
        public Task<RotationState> GetStateAsync(NodeProfile node, CancellationToken ct) => throw Missing();

        private static BbException Missing() => new BbException("UpgradeAdapterMissing", BbErrorCategory.NotInstalled, Message);
    }

    /// <summary>Placeholder until the node-host adapter is wired: probes report it, changes refuse.</summary>
    internal sealed class UnwiredNodeHost : INodeHost
    {
        internal const string Message = "The node-host adapter (remoting/SSH node steps) is not wired into the upgrade cmdlets in this build (UpgradePortsFactory.NodeHostFactory).";

        public Task<NodeHostProbe> ProbeAsync(NodeProfile node, CancellationToken ct) =>
            Task.FromResult(new NodeHostProbe { Reachable = false, Problem = Message });

        public Task<NodeHostState> GetStateAsync(NodeProfile node, CancellationToken ct) => throw Missing();
        public Task PreStageAsync(NodeProfile node, ReleaseArchive archive, string targetVersion, CancellationToken ct) => throw Missing();
        public Task StopAsync(NodeProfile node, CancellationToken ct) => throw Missing();
        public Task WaitProcessGoneAsync(NodeProfile node, TimeSpan timeout, CancellationToken ct) => throw Missing();
        public Task InstallAsync(NodeProfile node, string targetVersion, CancellationToken ct) => throw Missing();
        public Task StartAsync(NodeProfile node, CancellationToken ct) => throw Missing();
        public Task WaitStatusRunningAsync(NodeProfile node, TimeSpan timeout, CancellationToken ct) => throw Missing();
        public Task RollBackAsync(NodeProfile node, string previousVersion, CancellationToken ct) => throw Missing();

        private static BbException Missing() => new BbException("UpgradeAdapterMissing", BbErrorCategory.NotInstalled, Message);
    }
}
