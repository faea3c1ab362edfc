using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Security;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Describes a load balancer once (kind, control endpoints, backend, credentials, node-to-member mapping) for the other load-balancer cmdlets.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.New, "BbLoadBalancer", HelpUri = HelpLinks.CommandsBase + "New-BbLoadBalancer.md")]
    [OutputType(typeof(LoadBalancerDescription))]
    public sealed class NewBbLoadBalancerCommand : BbCmdlet
    {
        /// <summary>HAProxy, Nginx, NginxPlus, Apache, AzureAppGateway or F5BigIp.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        public LoadBalancerKind Kind { get; set; }

        /// <summary>
        /// HAProxy: admin sockets (unix:///run/haproxy.sock, tcp://host:port), one per instance of an HA pair. Nginx: the config
        /// file with the upstream. NginxPlus: the API URL (http://lb:8080/api). Apache: the balancer-manager URL.
        /// AzureAppGateway: the gateway's resource id. F5BigIp: the management URL of each unit of the pair.
        /// </summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        public string[] Endpoint { get; set; } = null!;

        /// <summary>HAProxy backend, NGINX upstream, Apache balancer name, or Azure backend pool.</summary>
        [Parameter(Mandatory = true, Position = 2)]
        [ValidateNotNullOrEmpty]
        public string Backend { get; set; } = null!;

        /// <summary>Node name (or IP address) to member name, for members not named like the nodes.</summary>
        [Parameter]
        public Hashtable? MemberMap { get; set; }

        /// <summary>How nodes are matched to members: Auto (map, then name, then address), Name, Address, Map.</summary>
        [Parameter]
        public MemberMatch MatchBy { get; set; } = MemberMatch.Auto;

        /// <summary>The account of the load balancer's control API (not Bitbucket's): HTTP Basic credentials for the NGINX Plus API or the balancer-manager; the BIG-IP user for F5BigIp.</summary>
        [Parameter]
        [Credential]
        public PSCredential? ApiCredential { get; set; }

        /// <summary>Do not verify the TLS certificate of an HTTPS endpoint. Unsafe: test servers only.</summary>
        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>Seconds one request or command may take.</summary>
        [Parameter]
        [ValidateRange(1, 600)]
        public int TimeoutSec { get; set; } = 30;

        /// <summary>NGINX: the nginx command line used for -t and -s reload (e.g. '/usr/sbin/nginx -c /etc/nginx/nginx.conf').</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string NginxCommand { get; set; } = "nginx";

        /// <summary>NGINX: the master's pid file when it is not the 'pid' of the config (default /run/nginx.pid).</summary>
        [Parameter]
        public string? NginxPidFile { get; set; }

        /// <summary>NGINX: the shell of the load-balancer host (an SSH or PowerShell-remoting node shell); default this machine.</summary>
        [Parameter]
        public INodeShell? Shell { get; set; }

        /// <summary>Azure: ManagedIdentity (default), ServicePrincipal or Token.</summary>
        [Parameter]
        public AzureAuthentication AzureAuthentication { get; set; } = AzureAuthentication.ManagedIdentity;

        /// <summary>Azure: the Entra ID tenant of the service principal.</summary>
        [Parameter]
        public string? TenantId { get; set; }

        /// <summary>Azure: the service principal (user name = application id, password = client secret).</summary>
        [Parameter]
        [Credential]
        public PSCredential? ServicePrincipal { get; set; }

        /// <summary>Azure: the client id of a user-assigned managed identity.</summary>
        [Parameter]
        public string? ClientId { get; set; }

        /// <summary>Azure: a bearer token for Azure Resource Manager (e.g. (Get-AzAccessToken -AsSecureString).Token).</summary>
        [Parameter]
        public SecureString? AzureToken { get; set; }

        /// <summary>Azure: the Resource Manager base URL (sovereign clouds, tests).</summary>
        [Parameter]
        public Uri? ManagementEndpoint { get; set; }

        /// <summary>Azure: the Entra ID authority base URL.</summary>
        [Parameter]
        public Uri? AuthorityEndpoint { get; set; }

        /// <summary>Azure: the VM metadata endpoint base URL.</summary>
        [Parameter]
        public Uri? ImdsEndpoint { get; set; }

        /// <summary>Azure: Azure Automation's identity endpoint (default: $env:IDENTITY_ENDPOINT).</summary>
        [Parameter]
        public Uri? IdentityEndpoint { get; set; }

        /// <summary>The kind's own settings by name, as in a profile's Settings (e.g. F5BigIp: @{ Partition = 'Tenant1'; ConfigSync = $false; CaCertificateFile = './bigip-ca.pem' }).</summary>
        [Parameter]
        public Hashtable? Setting { get; set; }

        protected override void ProcessRecord()
        {
            var descriptor = LoadBalancerKinds.Get(Kind);
            if (!descriptor.MultipleEndpoints && Endpoint.Length != 1)
                ThrowError("NewBbLoadBalancerInvalidEndpoint", ErrorCategory.InvalidArgument,
                    $"{Kind} takes exactly one endpoint; only HAProxy takes several (one per instance of an HA pair).", Endpoint);
            if (Kind == LoadBalancerKind.AzureAppGateway)
            {
                if (AzureAuthentication == AzureAuthentication.ServicePrincipal && (ServicePrincipal is null || string.IsNullOrEmpty(TenantId)))
                    ThrowError("NewBbLoadBalancerMissingServicePrincipal", ErrorCategory.InvalidArgument,
                        "-AzureAuthentication ServicePrincipal needs -TenantId and -ServicePrincipal (application id and client secret).");
                if (AzureAuthentication == AzureAuthentication.Token && AzureToken is null)
                    ThrowError("NewBbLoadBalancerMissingToken", ErrorCategory.InvalidArgument, "-AzureAuthentication Token needs -AzureToken.");
            }

            LoadBalancerDescription d;
            try
            {
                d = new LoadBalancerDescription(Kind, Endpoint, Backend);
            }
            catch (ArgumentException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, "NewBbLoadBalancerInvalidArgument", ErrorCategory.InvalidArgument, Endpoint));
                return;
            }
            d.MatchBy = MatchBy;
            d.MemberMap = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (MemberMap is not null)
                foreach (DictionaryEntry e in MemberMap)
                    d.MemberMap[e.Key?.ToString() ?? ""] = e.Value?.ToString() ?? "";
            if (MatchBy == MemberMatch.Map && d.MemberMap.Count == 0)
                ThrowError("NewBbLoadBalancerMissingMap", ErrorCategory.InvalidArgument, "-MatchBy Map needs -MemberMap @{ '<node>' = '<member>' }.");
            if (ApiCredential is not null)
            {
                d.UserName = ApiCredential.UserName;
                d.Password = ApiCredential.Password;
            }
            d.SkipCertificateCheck = SkipCertificateCheck;
            d.RequestTimeout = TimeSpan.FromSeconds(TimeoutSec);
            d.NginxCommand = NginxCommand;
            d.NginxPidFile = NginxPidFile;
            d.Shell = Shell;
            d.AzureAuthentication = AzureAuthentication;
            d.TenantId = TenantId;
            d.ClientId = ServicePrincipal?.UserName ?? ClientId;
            d.ClientSecret = ServicePrincipal?.Password;
            d.Token = AzureToken;
            if (ManagementEndpoint is not null) d.ManagementEndpoint = ManagementEndpoint;
            if (AuthorityEndpoint is not null) d.AuthorityEndpoint = AuthorityEndpoint;
            if (ImdsEndpoint is not null) d.ImdsEndpoint = ImdsEndpoint;
            d.IdentityEndpoint = IdentityEndpoint;
            if (Setting is not null)
                foreach (DictionaryEntry e in Setting)
                {
                    var key = e.Key?.ToString() ?? "";
                    var setting = System.Linq.Enumerable.FirstOrDefault(descriptor.Settings, x => string.Equals(x.Name, key, StringComparison.OrdinalIgnoreCase));
                    if (setting is null)
                        ThrowError("NewBbLoadBalancerUnknownSetting", ErrorCategory.InvalidArgument,
                            $"-Setting '{key}' is not a setting of {descriptor.Name}; it takes {(descriptor.Settings.Count == 0 ? "none" : string.Join(", ", System.Linq.Enumerable.Select(descriptor.Settings, x => x.Name)))}.", key);
                    try
                    {
                        setting!.Apply(d, Convert.ToString(LanguagePrimitives.ConvertTo<string>(e.Value), System.Globalization.CultureInfo.InvariantCulture)?.Trim() ?? "");
                    }
                    catch (FormatException ex)
                    {
                        ThrowError("NewBbLoadBalancerInvalidSetting", ErrorCategory.InvalidArgument, $"-Setting {key}: {ex.Message}", key);
                    }
                }
            if (SkipCertificateCheck)
                WarnCertificateCheckOff(d.DisplayName);

            try
            {
                descriptor.Create(d).Dispose(); // validates the endpoints' form now, not at the first change
            }
            catch (Core.BbException ex)
            {
                ThrowTerminatingError(BbErrors.FromException(ex, Endpoint));
            }
            WriteObject(d);
        }
    }
}
