using System;
using System.Collections.Generic;
using BitbucketZdu.Core.Rules;

namespace BitbucketZdu.Core.Upgrade.Profile
{
    /// <summary>How a node's Bitbucket process is run: decides how the node host stops and starts it.</summary>
    public enum ServiceKind
    {
        /// <summary>Linux systemd unit (atlbitbucket).</summary>
        Systemd,
        /// <summary>Windows service (AtlassianBitbucket).</summary>
        WindowsService,
        /// <summary>bin/start-bitbucket.sh and bin/stop-bitbucket.sh of the install dir.</summary>
        Script,
    }

    /// <summary>A load balancer in front of the cluster, as the profile names it.</summary>
    public sealed class LoadBalancerProfile
    {
        public LoadBalancerProfile(string name, string kind, IReadOnlyDictionary<string, string?> settings, string place)
        {
            Name = name;
            Kind = kind;
            Settings = settings;
            Place = place;
        }

        /// <summary>The name nodes refer to in their Members.</summary>
        public string Name { get; }
        /// <summary>HAProxy, Nginx, Apache or AzureAppGateway.</summary>
        public string Kind { get; }
        /// <summary>Provider settings (admin socket, status URL, backend, resource id...): never secrets, those come from parameters.</summary>
        public IReadOnlyDictionary<string, string?> Settings { get; }
        /// <summary>Where in the profile this was defined, e.g. <c>LoadBalancers[0]</c>.</summary>
        public string Place { get; }

        public override string ToString() => $"{Name} ({Kind})";
    }

    /// <summary>A node's member (server) in one load balancer.</summary>
    public sealed class NodeMember
    {
        public NodeMember(string loadBalancer, string member, string place)
        {
            LoadBalancer = loadBalancer;
            Member = member;
            Place = place;
        }

        public string LoadBalancer { get; }
        /// <summary>The member as the load balancer knows it (HAProxy backend/server, NGINX upstream server, balancer member URL...).</summary>
        public string Member { get; }
        public string Place { get; }

        public override string ToString() => LoadBalancer + ":" + Member;
    }

    /// <summary>
    /// The profile's <c>Ssh = @{ KeyFilePath = ...; KnownHostsFile = ... }</c>: which private key ssh offers and which
    /// known_hosts file pins the nodes' host keys (host keys are always verified). Null values leave ssh's own
    /// configuration (~/.ssh/config, the agent, ~/.ssh/known_hosts) in charge.
    /// </summary>
    public sealed class SshSettings
    {
        public static readonly SshSettings None = new SshSettings(null, null);

        public SshSettings(string? keyFilePath, string? knownHostsFile)
        {
            KeyFilePath = keyFilePath;
            KnownHostsFile = knownHostsFile;
        }

        public string? KeyFilePath { get; }
        public string? KnownHostsFile { get; }

        /// <summary>'~/x' as ssh reads it: under the user's home folder.</summary>
        public static string ExpandHome(string path) =>
            path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal)
                ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path.Substring(2) : "")
                : path;
    }

    /// <summary>
    /// The profile's <c>WinRM = @{ UseSSL = $true; Authentication = 'Kerberos'; ConfigurationName = '...'; SkipCACheck = $false; ... }</c>
    /// for winrm:// nodes (cluster-wide, a node's own wins key by key). Null leaves New-PSSession's default. The skip
    /// switches turn certificate checks off and are only ever set when the profile says so (the run warns each time).
    /// </summary>
    public sealed class WinRMSettings
    {
        public static readonly WinRMSettings None = new WinRMSettings();

        public bool? UseSsl { get; set; }
        /// <summary>Default, Negotiate, Kerberos, CredSSP or Basic (New-PSSession -Authentication).</summary>
        public string? Authentication { get; set; }
        public string? ConfigurationName { get; set; }
        public bool? SkipCACheck { get; set; }
        public bool? SkipCNCheck { get; set; }
        public bool? SkipRevocationCheck { get; set; }

        /// <summary>These settings with <paramref name="inherited"/> under them.</summary>
        public WinRMSettings Over(WinRMSettings inherited) => new WinRMSettings
        {
            UseSsl = UseSsl ?? inherited.UseSsl,
            Authentication = Authentication ?? inherited.Authentication,
            ConfigurationName = ConfigurationName ?? inherited.ConfigurationName,
            SkipCACheck = SkipCACheck ?? inherited.SkipCACheck,
            SkipCNCheck = SkipCNCheck ?? inherited.SkipCNCheck,
            SkipRevocationCheck = SkipRevocationCheck ?? inherited.SkipRevocationCheck,
        };
    }

    /// <summary>One node of the cluster as the profile describes it.</summary>
    public sealed class NodeProfile
    {
        public NodeProfile(string name, string? apiAddress, Uri url, string remotingTarget, string installRoot, ServiceKind serviceKind,
            IReadOnlyList<NodeMember> members, string place)
        {
            Name = name;
            ApiAddress = apiAddress;
            Url = url;
            RemotingTarget = remotingTarget;
            InstallRoot = installRoot;
            ServiceKind = serviceKind;
            Members = members;
            Place = place;
        }

        /// <summary>The node's name as the API reports it (NodeInfoDTO.name).</summary>
        public string Name { get; }
        /// <summary>The node's cluster address as the API reports it: ip or ip:port (used when names are not configured).</summary>
        public string? ApiAddress { get; }
        /// <summary>The node's own HTTP base URL (bypassing the load balancer): /status and the node's own view of the cluster.</summary>
        public Uri Url { get; }
        /// <summary>Where node work runs: a host name for PowerShell remoting / SSH, or "local".</summary>
        public string RemotingTarget { get; }
        /// <summary>The folder holding the versioned install dirs (atlassian-bitbucket-x.y.z).</summary>
        public string InstallRoot { get; }
        public ServiceKind ServiceKind { get; }
        public IReadOnlyList<NodeMember> Members { get; }
        /// <summary>Where in the profile this node was defined, e.g. <c>Nodes[1]</c>.</summary>
        public string Place { get; }
        /// <summary>The SSH identity and known_hosts file for ssh:// and pwsh+ssh:// (none: ssh's own config and agent).</summary>
        public SshSettings Ssh { get; set; } = SshSettings.None;
        /// <summary>How winrm:// reaches the node (TLS, authentication, endpoint, certificate checks).</summary>
        public WinRMSettings WinRM { get; set; } = WinRMSettings.None;

        public override string ToString() => Name;
    }

    /// <summary>How long each wait may take before the run halts; generous defaults for real clusters, short ones in tests.</summary>
    public sealed class UpgradeTimeouts
    {
        public TimeSpan Drain { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan Stop { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan Offline { get; set; } = TimeSpan.FromMinutes(2);
        public TimeSpan Start { get; set; } = TimeSpan.FromMinutes(15);
        public TimeSpan Healthy { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan Stable { get; set; } = TimeSpan.FromMinutes(10);
        /// <summary>First poll interval; doubles up to <see cref="MaxPollInterval"/>.</summary>
        public TimeSpan FirstPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);
        /// <summary>Longest poll interval: a state change is noticed within this time plus one request (target: 1 s).</summary>
        public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
    }

    /// <summary>The release to install: a local path or URL and its SHA-256.</summary>
    public sealed class ReleaseArchive
    {
        public ReleaseArchive(string location, string sha256)
        {
            Location = location;
            Sha256 = sha256;
        }

        public string Location { get; }
        /// <summary>Lower-case hex SHA-256 of the archive.</summary>
        public string Sha256 { get; }
        public bool IsUrl => Uri.TryCreate(Location, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps);

        public override string ToString() => Location;
    }

    /// <summary>A cluster described once: where its API is, its nodes and load balancers, and the release to go to.</summary>
    public sealed class ClusterProfile
    {
        public ClusterProfile(string name, Uri baseUrl, BitbucketVersion targetVersion, ReleaseArchive archive,
            IReadOnlyList<NodeProfile> nodes, IReadOnlyList<LoadBalancerProfile> loadBalancers)
        {
            Name = name;
            BaseUrl = baseUrl;
            TargetVersion = targetVersion;
            Archive = archive;
            Nodes = nodes;
            LoadBalancers = loadBalancers;
        }

        /// <summary>A short name for the cluster: names the journal and lock files.</summary>
        public string Name { get; }
        /// <summary>The cluster's base URL (through the load balancer) for /rest/zdu.</summary>
        public Uri BaseUrl { get; }
        public BitbucketVersion TargetVersion { get; }
        public ReleaseArchive Archive { get; }
        public IReadOnlyList<NodeProfile> Nodes { get; }
        public IReadOnlyList<LoadBalancerProfile> LoadBalancers { get; }
        /// <summary>Minimum free disk space per node for the new install dir, in bytes (default 2 GiB).</summary>
        public long MinFreeDiskBytes { get; set; } = 2L * 1024 * 1024 * 1024;
        /// <summary>Optional: how many active users one node can serve; checks capacity with one node out.</summary>
        public int? MaxUsersPerNode { get; set; }
        /// <summary>
        /// Up to this many nodes out of rotation at once (a batch; default 1, Atlassian's one node at a time). The profile's
        /// <c>MaxUnavailable</c>, overridden by Invoke-BbRollingUpgrade -MaxUnavailable. The load balancers' MaxMembersOut guard is set to it.
        /// </summary>
        public int MaxUnavailable { get; set; } = 1;
        /// <summary>Optional <c>MinNodesInRotation</c>: the capacity rule's minimum of nodes ACTIVE and in rotation at every moment (default ⌈N/2⌉).</summary>
        public int? MinNodesInRotation { get; set; }
        /// <summary>The capacity rule: at least this many nodes ACTIVE and in rotation at every moment of a run.</summary>
        public int RequiredInRotation => MinNodesInRotation ?? (Nodes.Count + 1) / 2;
        /// <summary>Optional: the journal folder (default: per-user application data).</summary>
        public string? JournalPath { get; set; }
        /// <summary>Optional: the journal and its lock in an Azure Storage container instead of a folder.</summary>
        public BitbucketZdu.Core.Upgrade.Journal.BlobJournalSettings? Journal { get; set; }
        /// <summary>Where the profile was read from (for messages), or null.</summary>
        public string? Source { get; set; }
        public UpgradeTimeouts Timeouts { get; set; } = new UpgradeTimeouts();
        /// <summary>Optional <c>Tls = @{ TrustedCertificatePath = ... }</c>: a CA trusted for the API, the nodes' APIs and /status.</summary>
        public string? TrustedCertificatePath { get; set; }
        /// <summary>Optional <c>Proxy = @{ Uri = ... }</c>: an HTTP proxy for every call to Bitbucket (its credential is -ProxyCredential).</summary>
        public Uri? Proxy { get; set; }

        public NodeProfile? FindNode(string name)
        {
            foreach (var n in Nodes)
                if (string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase)) return n;
            return null;
        }
    }
}
