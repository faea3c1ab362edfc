using System;
using System.Collections.Generic;
using System.Linq;
using System.Security;
using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>How Azure Resource Manager tokens are obtained.</summary>
    public enum AzureAuthentication
    {
        /// <summary>Managed identity: Azure Automation's IDENTITY_ENDPOINT when set, else the VM metadata endpoint (IMDS).</summary>
        ManagedIdentity,
        /// <summary>A service principal's client secret (client-credentials grant).</summary>
        ServicePrincipal,
        /// <summary>A bearer token the caller already has.</summary>
        Token,
    }

    /// <summary>
    /// A load balancer described once and reused: what kind it is, where its control interface is, which
    /// backend/upstream/balancer/pool serves Bitbucket, credentials where needed, and how nodes map to members.
    /// Holds secrets only as <see cref="SecureString"/>; <see cref="ToString"/> never shows them.
    /// </summary>
    public sealed class LoadBalancerDescription
    {
        public LoadBalancerDescription(LoadBalancerKind kind, IEnumerable<string> endpoints, string backend)
        {
            Kind = kind;
            Endpoints = (endpoints ?? throw new ArgumentNullException(nameof(endpoints))).Where(e => !string.IsNullOrWhiteSpace(e)).Select(e => e.Trim()).ToArray();
            if (Endpoints.Count == 0) throw new ArgumentException("At least one endpoint is required.", nameof(endpoints));
            Backend = string.IsNullOrWhiteSpace(backend) ? throw new ArgumentException("The backend (upstream, balancer or pool name) is required.", nameof(backend)) : backend.Trim();
        }

        public LoadBalancerKind Kind { get; }

        /// <summary>
        /// HAProxy: admin sockets (<c>unix:///run/haproxy.sock</c>, <c>tcp://host:port</c>), one per instance of an HA pair.
        /// NGINX: the config file holding the upstream. NGINX Plus: the API base (<c>http://lb:8080/api</c>).
        /// Apache: the balancer-manager URL. Azure: the gateway's resource id.
        /// </summary>
        public IReadOnlyList<string> Endpoints { get; }

        /// <summary>HAProxy backend, NGINX upstream, Apache balancer (without balancer://), Azure backend pool.</summary>
        public string Backend { get; }

        public MemberMatch MatchBy { get; set; } = MemberMatch.Auto;

        /// <summary>Node name (or address) → member name.</summary>
        public IDictionary<string, string> MemberMap { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        /// <summary>HTTP Basic user for NGINX Plus / Apache (optional).</summary>
        public string? UserName { get; set; }
        public SecureString? Password { get; set; }

        public bool SkipCertificateCheck { get; set; }
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

        // NGINX open source
        /// <summary>The nginx command line used for -t and -s reload (e.g. <c>nginx</c> or <c>/usr/sbin/nginx -c /etc/nginx/nginx.conf</c>).</summary>
        public string NginxCommand { get; set; } = "nginx";

        /// <summary>The nginx master's pid file; when null it is read from <c>nginx -T</c> (directive pid), else /run/nginx.pid.</summary>
        public string? NginxPidFile { get; set; }

        /// <summary>Where the NGINX config lives and nginx runs; null = this machine.</summary>
        public INodeShell? Shell { get; set; }

        // Azure Application Gateway
        public AzureAuthentication AzureAuthentication { get; set; } = AzureAuthentication.ManagedIdentity;
        public string? TenantId { get; set; }
        /// <summary>Service principal application id, or a user-assigned managed identity's client id.</summary>
        public string? ClientId { get; set; }
        public SecureString? ClientSecret { get; set; }
        /// <summary>A bearer token for Azure Resource Manager (<see cref="AzureAuthentication.Token"/>).</summary>
        public SecureString? Token { get; set; }
        public Uri ManagementEndpoint { get; set; } = new Uri("https://management.azure.com/");
        public Uri AuthorityEndpoint { get; set; } = new Uri("https://login.microsoftonline.com/");
        /// <summary>The VM metadata endpoint (IMDS).</summary>
        public Uri ImdsEndpoint { get; set; } = new Uri("http://169.254.169.254/");
        /// <summary>Azure Automation's identity endpoint and header; default from IDENTITY_ENDPOINT / IDENTITY_HEADER.</summary>
        public Uri? IdentityEndpoint { get; set; }
        public SecureString? IdentityHeader { get; set; }
        public string AzureApiVersion { get; set; } = "2024-05-01";
        /// <summary>The token audience (resource) for Azure Resource Manager; differs only in sovereign clouds.</summary>
        public string AzureResource { get; set; } = "https://management.azure.com/";
        /// <summary>Upper bound for one wait after 429 Retry-After / 409 conflicts (tests shorten it).</summary>
        public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>Settings of a kind that has no property of its own here (written by its descriptor's settings; never secrets).</summary>
        public IDictionary<string, string> Options { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        /// <summary>A name for messages: kind, endpoints and backend (no secrets).</summary>
        public string DisplayName => $"{Kind} {EndpointText} [{Backend}]";

        /// <summary>The endpoints for messages; a config file on another host is shown as host:path.</summary>
        public string EndpointText => string.Join(", ", Shell is null ? Endpoints : Endpoints.Select(e => Shell.HostName + ":" + e));

        public override string ToString() => DisplayName;
    }
}
