using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Ports
{
    /// <summary>Where a node stands in its load balancers (all of its members together).</summary>
    public enum RotationState
    {
        Unknown,
        /// <summary>Every member takes new requests.</summary>
        InRotation,
        /// <summary>At least one member drains (no new sessions, existing ones finish).</summary>
        Draining,
        /// <summary>Every member is out (maintenance): no traffic reaches the node.</summary>
        OutOfRotation,
    }

    /// <summary>What a read-only look at a node's load-balancer members found.</summary>
    public sealed class RotationProbe
    {
        public bool Reachable { get; set; }
        public bool MemberFound { get; set; }
        public RotationState State { get; set; }
        /// <summary>Members of the same load balancer(s) that are up and in rotation, not counting this node's.</summary>
        public int OtherHealthyMembers { get; set; }
        /// <summary>What went wrong (unreachable admin socket, member not found...), or null.</summary>
        public string? Problem { get; set; }
    }

    /// <summary>
    /// The load-balancer side of a node (port): every member the profile names for the node, in every load balancer.
    /// Adapters over Core/LoadBalancers bind it after the merge.
    /// </summary>
    public interface IRotation
    {
        /// <summary>Read-only probe for preflight: reachable, member found, state, other healthy members.</summary>
        Task<RotationProbe> ProbeAsync(NodeProfile node, CancellationToken cancellationToken);

        /// <summary>Drain every member, wait until it has no sessions (or <paramref name="drainTimeout"/>), then put it in maintenance. Idempotent.</summary>
        Task TakeOutAsync(NodeProfile node, TimeSpan drainTimeout, CancellationToken cancellationToken);

        /// <summary>
        /// Put every member back in rotation and wait until the load balancer sees it healthy. Idempotent.
        /// <paramref name="healthGatePassed"/>: the node just passed the upgrade's health gate, so the balancer may be
        /// told it is healthy instead of waiting for its own checks to rise.
        /// </summary>
        Task PutBackAsync(NodeProfile node, TimeSpan healthyTimeout, CancellationToken cancellationToken, bool healthGatePassed = false);

        Task<RotationState> GetStateAsync(NodeProfile node, CancellationToken cancellationToken);
    }

    /// <summary>What a read-only look at a node host found.</summary>
    public sealed class NodeHostProbe
    {
        public bool Reachable { get; set; }
        /// <summary>The version of the install dir the node runs from (the "current" one), or null when unknown.</summary>
        public string? InstalledVersion { get; set; }
        public long? FreeDiskBytes { get; set; }
        public string? Problem { get; set; }
    }

    /// <summary>The real state of a node host: is Bitbucket running, which install dir is current, what is staged.</summary>
    public sealed class NodeHostState
    {
        public bool ProcessRunning { get; set; }
        /// <summary>The version of the install dir the service points at now.</summary>
        public string? InstalledVersion { get; set; }
        /// <summary>The versions extracted and configured, ready to switch to (includes the installed one).</summary>
        public IReadOnlyList<string> StagedVersions { get; set; } = Array.Empty<string>();
        /// <summary>GET /status answered 200 {"state":"RUNNING"}.</summary>
        public bool StatusRunning { get; set; }
        /// <summary>The Bitbucket process id while it runs, when the host can tell (for messages: what to end by hand).</summary>
        public int? ProcessId { get; set; }
    }

    /// <summary>
    /// The machine side of a node (port): runs on the node over remoting/SSH. Adapters over Core/Nodes bind it after
    /// the merge. Every method is idempotent: calling it when its effect is already there does nothing.
    /// </summary>
    public interface INodeHost
    {
        Task<NodeHostProbe> ProbeAsync(NodeProfile node, CancellationToken cancellationToken);

        Task<NodeHostState> GetStateAsync(NodeProfile node, CancellationToken cancellationToken);

        /// <summary>Copy the archive to the node, verify its SHA-256, extract into a NEW install dir, carry customisations and service config. The running node is untouched.</summary>
        Task PreStageAsync(NodeProfile node, ReleaseArchive archive, string targetVersion, CancellationToken cancellationToken);

        /// <summary>Graceful stop (the service's own stop, with Bitbucket's grace period).</summary>
        Task StopAsync(NodeProfile node, CancellationToken cancellationToken);

        /// <summary>Wait until no Bitbucket process is left on the node.</summary>
        Task WaitProcessGoneAsync(NodeProfile node, TimeSpan timeout, CancellationToken cancellationToken);

        /// <summary>Point the service at the staged install dir of <paramref name="targetVersion"/>. Node must be stopped.</summary>
        Task InstallAsync(NodeProfile node, string targetVersion, CancellationToken cancellationToken);

        Task StartAsync(NodeProfile node, CancellationToken cancellationToken);

        /// <summary>Wait until the node's own GET /status answers RUNNING.</summary>
        Task WaitStatusRunningAsync(NodeProfile node, TimeSpan timeout, CancellationToken cancellationToken);

        /// <summary>Point the service back at the install dir of <paramref name="previousVersion"/> (the node must be stopped).</summary>
        Task RollBackAsync(NodeProfile node, string previousVersion, CancellationToken cancellationToken);
    }

    /// <summary>Everything a run needs, built from a profile by an <see cref="IUpgradePortsFactory"/>.</summary>
    public sealed class UpgradePorts : IDisposable
    {
        private readonly IDisposable? _owned;

        public UpgradePorts(IZduClient cluster, Func<NodeProfile, IZduClient> nodeApi, IRotation rotation, INodeHost nodes,
            IJournalStore journal, UpgradeClock clock, IDisposable? owned = null)
        {
            Cluster = cluster;
            NodeApi = nodeApi;
            Rotation = rotation;
            Nodes = nodes;
            Journal = journal;
            Clock = clock;
            _owned = owned;
        }

        /// <summary>The API through the cluster's base URL.</summary>
        public IZduClient Cluster { get; }
        /// <summary>The API at one node's own URL (its own view of the cluster). The factory caches and disposes them.</summary>
        public Func<NodeProfile, IZduClient> NodeApi { get; }
        public IRotation Rotation { get; }
        public INodeHost Nodes { get; }
        public IJournalStore Journal { get; }
        public UpgradeClock Clock { get; }

        public void Dispose() => _owned?.Dispose();
    }

    /// <summary>What the caller brings besides the profile: credentials and switches (never written to the journal).</summary>
    public sealed class UpgradeConnectionOptions
    {
        public ZduCredential? Credential { get; set; }
        /// <summary>An already open client for the cluster's base URL (Connect-BbCluster), used instead of a new one.</summary>
        public IZduClient? ClusterClient { get; set; }
        public bool SkipCertificateCheck { get; set; }
        /// <summary>-TrustedCertificatePath: a CA file trusted for the cluster API, each node's API and /status (overrides the profile's Tls.TrustedCertificatePath).</summary>
        public string? TrustedCertificatePath { get; set; }
        /// <summary>-Proxy: an HTTP proxy for every call to Bitbucket (overrides the profile's Proxy.Uri).</summary>
        public Uri? Proxy { get; set; }
        /// <summary>-ProxyCredential.</summary>
        public System.Net.NetworkCredential? ProxyCredential { get; set; }

        /// <summary>
        /// TLS trust and proxy for every call to Bitbucket (cluster API, nodes' APIs, /status): these options first, then
        /// the open connection's (<see cref="ClusterClient"/>), then the profile's Tls and Proxy settings.
        /// </summary>
        public BitbucketZdu.Core.Api.ZduTransport TransportFor(ClusterProfile profile)
        {
            var connection = (ClusterClient as BitbucketZdu.Core.Api.ZduClient)?.Options;
            return new BitbucketZdu.Core.Api.ZduTransport
            {
                TrustedCertificatePath = TrustedCertificatePath ?? connection?.TrustedCertificatePath ?? profile.TrustedCertificatePath,
                SkipCertificateCheck = SkipCertificateCheck || (connection?.SkipCertificateCheck ?? false),
                Proxy = Proxy ?? connection?.Proxy ?? profile.Proxy,
                ProxyCredential = ProxyCredential ?? connection?.ProxyCredential,
            };
        }
        /// <summary>Overrides the profile's JournalPath.</summary>
        public string? JournalPath { get; set; }

        /// <summary>-JournalUri as typed: the Azure Storage container of the journal (overrides the profile's Journal.Uri).</summary>
        public string? JournalUri { get; set; }
        /// <summary>-JournalAuthentication: overrides the profile's Journal.Authentication.</summary>
        public JournalAuthentication? JournalAuthentication { get; set; }
        /// <summary>-JournalCredential's user name: the storage account for Shared Key.</summary>
        public string? JournalAccountName { get; set; }
        /// <summary>-JournalCredential's password: account key, SAS or bearer token by <see cref="JournalAuthentication"/>.</summary>
        public System.Security.SecureString? JournalSecret { get; set; }
        /// <summary>-JournalAllowHttp: http:// to a host that is not loopback (a storage emulator).</summary>
        public bool JournalAllowHttp { get; set; }
        /// <summary>Load-balancer name (the profile's LoadBalancers[i].Name) → its credential: -LoadBalancerCredential or an Automation credential asset.</summary>
        public System.Collections.Generic.IReadOnlyDictionary<string, BitbucketZdu.Core.LoadBalancers.LoadBalancerCredential>? LoadBalancerCredentials { get; set; }
        /// <summary>Tests and proxies: the HTTP handler of the blob store (and of managed-identity tokens); null for a default one that verifies TLS.</summary>
        public Func<System.Net.Http.HttpMessageHandler>? JournalHttpHandler { get; set; }
        /// <summary>Tests: the managed-identity endpoints (default IDENTITY_ENDPOINT / IDENTITY_HEADER, else IMDS).</summary>
        public Uri? IdentityEndpoint { get; set; }
        public Uri? ImdsEndpoint { get; set; }

        /// <summary>
        /// Opens the shell that reaches a node (its profile's Remoting). The cmdlets set it: PowerShell sessions must be
        /// opened on the pipeline thread. Null: only 'local' and ssh:// targets can be reached.
        /// </summary>
        public Func<NodeProfile, CancellationToken, Task<BitbucketZdu.Core.Nodes.INodeShell>>? OpenShell { get; set; }
    }

    /// <summary>
    /// The seam between the engine and the real world: turns a profile into ports. The cmdlets use the one set in
    /// their factory slot; adapters over Core/LoadBalancers and Core/Nodes are wired into the default factory after
    /// those areas merge; tests put in-memory fakes there.
    /// </summary>
    public interface IUpgradePortsFactory
    {
        UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options);
    }
}
