using System;
using System.Collections.Generic;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Plan;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Writes a commented cluster profile (.psd1) template: base URL, nodes, load balancers and members, release archive and checksum.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.New, "BbClusterProfile", SupportsShouldProcess = true, DefaultParameterSetName = TemplateSet, HelpUri = HelpLinks.CommandsBase + "New-BbClusterProfile.md")]
    [OutputType(typeof(FileInfo))]
    public sealed class NewBbClusterProfileCommand : BbClusterCmdlet
    {
        private const string TemplateSet = "Template";
        private const string FromConnectionSet = "FromConnection";
        private const string NodeSet = "Node";

        /// <summary>Bitbucket's default HTTP port: the cluster API does not report a node's own HTTP port.</summary>
        internal const int DefaultNodeHttpPort = 7990;

        private readonly List<ZduNode> _piped = new List<ZduNode>();
        private ZduCluster? _cluster;

        /// <summary>Where to write the profile (.psd1).</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = null!;

        /// <summary>A short name for the cluster; names its journal.</summary>
        [Parameter]
        [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
        public string Name { get; set; } = "prod";

        /// <summary>The cluster's base URL (through the load balancer).</summary>
        [Parameter]
        public Uri BaseUrl { get; set; } = new Uri("https://bitbucket.example.com");

        /// <summary>The bug-fix release to go to.</summary>
        [Parameter]
        public string TargetVersion { get; set; } = "8.19.4";

        /// <summary>Node names (as the cluster API reports them); one entry each.</summary>
        [Parameter(ParameterSetName = TemplateSet)]
        [ValidateCount(2, 64)]
        public string[] NodeName { get; set; } = { "node-1", "node-2", "node-3" };

        /// <summary>Fill the nodes (names, addresses, context path) and the base URL from the connected cluster (Connect-BbCluster or -Connection).</summary>
        [Parameter(Mandatory = true, ParameterSetName = FromConnectionSet)]
        public SwitchParameter FromConnection { get; set; }

        /// <summary>The nodes to describe, as Get-BbNode returns them (piped, or -Node (Get-BbClusterStatus).Nodes).</summary>
        [Parameter(Mandatory = true, ParameterSetName = NodeSet, ValueFromPipeline = true)]
        [ValidateNotNull]
        public ZduNode[] Node { get; set; } = Array.Empty<ZduNode>();

        /// <summary>The load balancer in front of the nodes.</summary>
        [Parameter]
        public LoadBalancerKind LoadBalancerKind { get; set; } = LoadBalancerKind.HAProxy;

        /// <summary>The release archive (file path or URL).</summary>
        [Parameter]
        public string? ArchivePath { get; set; }

        /// <summary>The archive's SHA-256 (64 hex digits).</summary>
        [Parameter]
        [ValidatePattern("^[0-9a-fA-F]{64}$")]
        public string? ArchiveSha256 { get; set; }

        /// <summary>Keep the journal and its lock in this Azure Storage container (e.g. https://account.blob.core.windows.net/bitbucket-zdu) instead of a folder: for Azure Automation, whose disk does not outlive a job.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? JournalUri { get; set; }

        /// <summary>How the upgrade authenticates to the journal container (written as Journal.Authentication): ManagedIdentity (default), SharedKey, Sas or Token.</summary>
        [Parameter]
        public JournalAuthentication JournalAuthentication { get; set; } = JournalAuthentication.ManagedIdentity;

        /// <summary>Overwrite an existing file.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == NodeSet) _piped.AddRange(Node.Where(n => n is not null));
        }

        protected override void EndProcessing()
        {
            WriteProfile();
            base.EndProcessing();
        }

        private void WriteProfile()
        {
            var path = GetUnresolvedProviderPathFromPSPath(Path);
            if (Directory.Exists(path))
                ThrowError("NewBbClusterProfileIsDirectory", ErrorCategory.InvalidArgument,
                    $"'{path}' is a folder: give the path of the profile file to write, e.g. '{System.IO.Path.Combine(path, Name + ".psd1")}'.", path);
            if (!BitbucketVersion.TryParse(TargetVersion, out _))
                ThrowError("NewBbClusterProfileInvalidVersion", ErrorCategory.InvalidArgument,
                    $"-TargetVersion '{TargetVersion}' is not a Bitbucket version; expected major.minor.bugfix such as 8.19.4.", TargetVersion);
            if (!BaseUrl.IsAbsoluteUri || (BaseUrl.Scheme != Uri.UriSchemeHttp && BaseUrl.Scheme != Uri.UriSchemeHttps))
                ThrowError("NewBbClusterProfileInvalidUri", ErrorCategory.InvalidArgument,
                    $"-BaseUrl '{BaseUrl}' is not an http:// or https:// URL; give the cluster's base URL through the load balancer, e.g. https://bitbucket.example.com.", BaseUrl);
            if (ParameterSetName == FromConnectionSet)
            {
                _cluster = ReadCluster();
                if (!MyInvocation.BoundParameters.ContainsKey(nameof(BaseUrl))) BaseUrl = Client.BaseUri;
            }
            var apiNodes = ApiNodes();
            if (apiNodes is not null && apiNodes.Count < 2)
                ThrowError("NewBbClusterProfileTooFewNodes", ErrorCategory.InvalidData,
                    $"{(ParameterSetName == FromConnectionSet ? "The cluster at " + Client.BaseUri + " reports" : "The pipeline gave")} {apiNodes.Count} node(s); a rolling upgrade needs at least two (with one node out, the others serve the users). Give -NodeName for a template instead.",
                    apiNodes.Count);
            var duplicate = NodeName.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
                ThrowError("NewBbClusterProfileDuplicateNode", ErrorCategory.InvalidArgument,
                    $"-NodeName lists '{duplicate.Key}' {duplicate.Count()} times; give each node of the cluster once.", duplicate.Key);
            if (JournalUri is not null && !JournalStoreFactory.TryParseContainerUri(JournalUri, out _, out var why))
                ThrowError("JournalStorageInvalidUri", ErrorCategory.InvalidArgument, "-JournalUri: " + why, "JournalUri");
            if (File.Exists(path) && !Force)
                ThrowError("NewBbClusterProfileExists", ErrorCategory.ResourceExists, $"'{path}' already exists. Use -Force to overwrite it.", path);
            if (!ShouldProcess(path, "Write a cluster profile template")) return;
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path) ?? ".");
            File.WriteAllText(path, Template(), new UTF8Encoding(false));
            WriteObject(new FileInfo(path));
        }

        private static string Q(string s) => "'" + s.Replace("'", "''") + "'";

        internal string Template()
        {
            var archive = ArchivePath ?? $"https://www.atlassian.com/software/stash/downloads/binary/atlassian-bitbucket-{TargetVersion}.tar.gz";
            var archiveKey = Uri.TryCreate(archive, UriKind.Absolute, out var u) && (u.Scheme == "http" || u.Scheme == "https") ? "Url " : "Path";
            var sb = new StringBuilder();
            sb.AppendLine("# BitbucketZdu cluster profile: describes the cluster once for Invoke-BbRollingUpgrade.");
            sb.AppendLine("# Check it with:  Test-BbClusterProfile -ProfilePath <this file>");
            sb.AppendLine("# Data only: no secrets here (credentials come from -Credential or Connect-BbCluster).");
            sb.AppendLine("@{");
            sb.AppendLine("    # Short name: names the journal and lock files (letters, digits, . _ -).");
            sb.AppendLine($"    Name          = {Q(Name)}");
            sb.AppendLine("    # The cluster's base URL through the load balancer (the /rest/zdu API is called here).");
            sb.AppendLine($"    BaseUrl       = {Q(BaseUrl.ToString())}");
            sb.AppendLine("    # A higher bug-fix release of the running line (8.19.3 -> 8.19.4). Feature upgrades need an outage.");
            sb.AppendLine($"    TargetVersion = {Q(TargetVersion)}");
            sb.AppendLine();
            sb.AppendLine("    # The release archive (Path = file, or Url = http/https) and its SHA-256 from Atlassian's download page.");
            sb.AppendLine("    Archive       = @{");
            sb.AppendLine($"        {archiveKey}   = {Q(archive)}");
            sb.AppendLine($"        Sha256 = {Q(ArchiveSha256?.ToLowerInvariant() ?? "<sha-256 of the archive: 64 hex digits>")}");
            sb.AppendLine("    }");
            sb.AppendLine();
            var kind = LoadBalancerKinds.Get(LoadBalancerKind);
            sb.AppendLine($"    # Load balancers in front of the nodes. Kind: {LoadBalancerKinds.Names}.");
            sb.AppendLine($"    # Settings depend on the kind. {kind.Name}: Endpoint = {kind.EndpointHelp}; Backend = {kind.BackendHelp}.");
            foreach (var setting in kind.AllSettings)
                sb.AppendLine($"    #   {setting.Name,-20} {setting.Help}");
            if (kind.Secret is not null)
                sb.AppendLine($"    # Its credential ({kind.Secret.Help}) never goes here: Invoke-BbRollingUpgrade -LoadBalancerCredential @{{ lb1 = $cred }}, or in a runbook CredentialAsset = '<asset name>'.");
            sb.AppendLine("    LoadBalancers = @(");
            sb.AppendLine("        @{");
            sb.AppendLine("            Name     = 'lb1'");
            sb.AppendLine($"            Kind     = {Q(kind.Name)}");
            sb.AppendLine($"            Settings = @{{ {kind.TemplateSettings} }}");
            sb.AppendLine("        }");
            sb.AppendLine("    )");
            sb.AppendLine();
            sb.AppendLine("    # Every node of the cluster, exactly as many as the API reports.");
            sb.AppendLine("    #   Name        as the API reports it (GET /rest/zdu/cluster: nodes[].name)");
            sb.AppendLine("    #   ApiAddress  optional: ip or ip:port as the API reports it, when names are not configured");
            sb.AppendLine("    #   Url         the node's own HTTP address, bypassing the load balancer (/status and its own view)");
            sb.AppendLine("    #   Remoting    where node work runs: 'local', 'ssh://user@host' (plain OpenSSH), 'pwsh+ssh://user@host',");
            sb.AppendLine("    #               'winrm://host' or a host name (PowerShell remoting over WinRM)");
            sb.AppendLine("    #   InstallRoot the folder holding the versioned install dirs");
            sb.AppendLine("    #   Service     Systemd, WindowsService or Script");
            sb.AppendLine("    #   Member      the node's server in the load balancer (Members = @{ lb1 = '...' } with several)");
            var apiNodes = ApiNodes();
            if (apiNodes is not null)
            {
                sb.AppendLine($"    #   From the cluster at {BaseUrl} ({DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC). The API reports no node's HTTP port:");
                sb.AppendLine($"    #   each Url has Bitbucket's default {DefaultNodeHttpPort} and the cluster's context path; change it if the nodes listen elsewhere.");
                var versions = apiNodes.Select(n => n.Version).Where(v => !string.IsNullOrEmpty(v)).Distinct().ToList();
                if (versions.Count > 0) sb.AppendLine($"    #   The nodes run {string.Join(", ", versions)} now.");
            }
            sb.AppendLine("    Nodes         = @(");
            foreach (var node in TemplateNodes(apiNodes))
            {
                sb.AppendLine("        @{");
                if (node.Comment is not null) sb.AppendLine($"            # {node.Comment}");
                sb.AppendLine($"            Name        = {Q(node.Name)}");
                if (node.ApiAddress is not null) sb.AppendLine($"            {(node.ApiAddressRequired ? "" : "# ")}ApiAddress  = {Q(node.ApiAddress)}");
                sb.AppendLine($"            Url         = {Q(node.Url)}");
                sb.AppendLine($"            Remoting    = {Q(node.Remoting)}");
                sb.AppendLine("            InstallRoot = '/opt/atlassian/bitbucket'");
                sb.AppendLine("            Service     = 'Systemd'");
                sb.AppendLine($"            Member      = {Q("bitbucket/" + node.Name)}");
                sb.AppendLine("        }");
            }
            sb.AppendLine("    )");
            sb.AppendLine();
            sb.AppendLine("    # Optional checks and limits.");
            sb.AppendLine("    MinFreeDiskGB   = 2        # free space each node needs for the new install dir");
            sb.AppendLine("    # MaxUsersPerNode = 500    # capacity check with one node out of rotation");
            sb.AppendLine("    # MaxUnavailable  = 1      # nodes upgraded at once (Invoke-BbRollingUpgrade -MaxUnavailable); 1 is Atlassian's way");
            sb.AppendLine("    # MinNodesInRotation = 6   # capacity rule: nodes ACTIVE and in rotation at every moment (default: half, rounded up)");
            if (JournalUri is null)
            {
                sb.AppendLine("    # JournalPath     = '...'  # default: per-user application data/BitbucketZdu/journal");
                sb.AppendLine("    # Or keep the journal and its lock (a blob lease) in Azure Storage, e.g. for Azure Automation (a job's disk is temporary):");
                sb.AppendLine("    # Journal = @{ Uri = 'https://<account>.blob.core.windows.net/bitbucket-zdu'; Authentication = 'ManagedIdentity' }  # or SharedKey/Sas/Token with -JournalCredential");
            }
            else
            {
                sb.AppendLine("    # The journal and its lock (a blob lease) in Azure Storage. Secrets never go here: ManagedIdentity needs none,");
                sb.AppendLine("    # SharedKey/Sas/Token take -JournalCredential. Optional: ClientId (user-assigned identity), BlobPrefix, LeaseSeconds (15-60).");
                sb.AppendLine($"    Journal = @{{ Uri = {Q(new Uri(JournalUri.Trim()).GetLeftPart(UriPartial.Path))}; Authentication = {Q(JournalAuthentication.ToString())} }}");
            }
            sb.AppendLine("    # For ssh:// and pwsh+ssh:// nodes: the private key ssh offers and the known_hosts file that pins the nodes' host keys");
            sb.AppendLine("    # (default: ssh's own ~/.ssh/config, agent and known_hosts). A node's own Ssh = @{ ... } wins key by key.");
            sb.AppendLine("    # Ssh = @{ KeyFilePath = '~/.ssh/bitbucket_zdu_ed25519'; KnownHostsFile = '~/.ssh/known_hosts' }");
            sb.AppendLine("    # Timeouts = @{ DrainSeconds = 300; StopSeconds = 300; OfflineSeconds = 120; StartSeconds = 900; HealthySeconds = 300; StableSeconds = 600 }");
            sb.AppendLine("}");
            return sb.ToString();
        }
    
        /// <summary>The cluster's (or the pipeline's) nodes; null for a template by -NodeName.</summary>
        private IReadOnlyList<ZduNode>? ApiNodes() => ParameterSetName switch
        {
            FromConnectionSet => _cluster?.Nodes ?? Array.Empty<ZduNode>(),
            NodeSet => _piped,
            _ => null,
        };

        private sealed class TemplateNode
        {
            public string Name = "";
            public string? ApiAddress;
            public bool ApiAddressRequired;
            public string Url = "";
            public string Remoting = "";
            public string? Comment;
        }

        /// <summary>
        /// One entry per node. From the API: its name, or (names "Not configured", the plugin's default, or a name two
        /// nodes share) a name made of its address with ApiAddress set, so the upgrade matches it by address; the node's
        /// own Url from its address, the default HTTP port and the cluster's context path.
        /// </summary>
        private IEnumerable<TemplateNode> TemplateNodes(IReadOnlyList<ZduNode>? apiNodes)
        {
            if (apiNodes is null)
            {
                var i = 0;
                foreach (var name in NodeName)
                {
                    i++;
                    yield return new TemplateNode
                    {
                        Name = name,
                        Url = string.Format(CultureInfo.InvariantCulture, "http://10.0.0.{0}:{1}/", i, DefaultNodeHttpPort),
                        Remoting = name + ".example.com",
                    };
                }
                yield break;
            }
            var contextPath = BaseUrl.AbsolutePath.TrimEnd('/');
            var names = apiNodes.Where(n => !string.IsNullOrWhiteSpace(n.Name)).GroupBy(n => n.Name!, StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.Count(), StringComparer.OrdinalIgnoreCase);
            var index = 0;
            var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var n in apiNodes)
            {
                index++;
                var configured = !string.IsNullOrWhiteSpace(n.Name) && !string.Equals(n.Name, NodeMatcher.NotConfigured, StringComparison.OrdinalIgnoreCase)
                    && names[n.Name!] == 1;
                var host = string.IsNullOrEmpty(n.IpAddress) ? (configured ? n.Name! : "node" + index.ToString(CultureInfo.InvariantCulture) + ".example.com") : n.IpAddress!;
                var urlHost = host.Contains(":") && !host.StartsWith("[", StringComparison.Ordinal) ? "[" + host + "]" : host;
                var byAddress = n.Address ?? n.Id ?? index.ToString(CultureInfo.InvariantCulture);
                var why = configured ? null : string.IsNullOrWhiteSpace(n.Name) || string.Equals(n.Name, NodeMatcher.NotConfigured, StringComparison.OrdinalIgnoreCase)
                    ? $"The API names this node '{n.Name ?? ""}': matched by ApiAddress."
                    : $"Two nodes are named '{n.Name}': matched by ApiAddress.";
                var name = configured ? n.Name! : "node-" + new string(byAddress.Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
                // Two unnamed nodes on one address (the plugin's JSON has no port): the profile still needs one name each.
                if (!taken.Add(name)) taken.Add(name += "-" + index.ToString(CultureInfo.InvariantCulture));
                yield return new TemplateNode
                {
                    Name = name,
                    ApiAddress = n.Address,
                    ApiAddressRequired = !configured,
                    Url = string.Format(CultureInfo.InvariantCulture, "http://{0}:{1}{2}/", urlHost, DefaultNodeHttpPort, contextPath),
                    Remoting = host,
                    Comment = "API: id " + (n.Id ?? "?") + (n.Address is null ? "" : ", address " + n.Address) + (n.Version is null ? "" : ", version " + n.Version)
                        + " (ids may change on restart: the upgrade never matches by id)." + (why is null ? "" : " " + why),
                };
            }
        }
}
}
