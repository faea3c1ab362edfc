using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using BitbucketZdu.Core.Rules;

namespace BitbucketZdu.Core.Upgrade.Profile
{
    /// <summary>One problem in a profile, with its place in the file (e.g. <c>Nodes[2].Member</c>).</summary>
    public sealed class ProfileIssue
    {
        public ProfileIssue(string errorId, string place, string message)
        {
            ErrorId = errorId;
            Place = place;
            Message = message;
        }

        /// <summary>Profile&lt;Reason&gt;: ProfileMissingValue, ProfileInvalidValue, ProfileUnknownKey, ProfileInvalidNode, ProfileUnknownLoadBalancer, ProfileDuplicate, ProfileInvalidRemoting.</summary>
        public string ErrorId { get; }
        public string Place { get; }
        public string Message { get; }

        public override string ToString() => Place + ": " + Message;
    }

    /// <summary>A profile that cannot be used; <see cref="Issues"/> lists every problem found, not just the first.</summary>
    public sealed class ProfileException : BbException
    {
        public ProfileException(string? source, IReadOnlyList<ProfileIssue> issues)
            : base(issues.Count > 0 ? issues[0].ErrorId : "ProfileInvalid", BbErrorCategory.InvalidData, Describe(source, issues), source)
        {
            Issues = issues;
            var places = issues.Select(i => i.Place).Where(p => !string.IsNullOrEmpty(p)).Distinct().ToList();
            RecommendedAction = $"Fix {(places.Count == 0 ? "the profile" : string.Join(", ", places))}{(source is null ? "" : " in " + source)}, then check it with Test-BbClusterProfile{(source is null ? "" : " -ProfilePath '" + source + "'")} -SkipProbe.";
        }

        public IReadOnlyList<ProfileIssue> Issues { get; }

        private static string Describe(string? source, IReadOnlyList<ProfileIssue> issues) =>
            $"The cluster profile{(source is null ? "" : " '" + source + "'")} has {issues.Count} problem{(issues.Count == 1 ? "" : "s")}: "
            + string.Join("; ", issues.Select(i => i.ToString().TrimEnd('.')))
            + ". Fix the profile (New-BbClusterProfile writes a commented template) and run Test-BbClusterProfile.";
    }

    /// <summary>
    /// Maps a profile read by PowerShell (Import-PowerShellDataFile gives nested hashtables and object arrays) onto
    /// <see cref="ClusterProfile"/>, collecting every problem with its place. Keys are case-insensitive; unknown keys are
    /// errors (a typo must not silently drop a setting).
    /// </summary>
    public static class ClusterProfileReader
    {
        private static readonly string[] TopKeys = { "Name", "BaseUrl", "TargetVersion", "Archive", "Nodes", "LoadBalancers", "MinFreeDiskGB", "MaxUsersPerNode", "MaxUnavailable", "MinNodesInRotation", "JournalPath", "Journal", "Timeouts", "Ssh", "WinRM", "Tls", "Proxy" };
        private static readonly string[] TlsKeys = { "TrustedCertificatePath" };
        private static readonly string[] ProxyKeys = { "Uri" };
        private static readonly string[] JournalKeys = { "Uri", "Authentication", "ClientId", "BlobPrefix", "LeaseSeconds", "AllowHttp" };
        private static readonly string[] NodeKeys = { "Name", "ApiAddress", "Url", "Remoting", "InstallRoot", "Service", "Member", "Members", "Ssh", "WinRM" };
        private static readonly string[] SshKeys = { "KeyFilePath", "KnownHostsFile" };
        private static readonly string[] WinRMKeys = { "UseSSL", "Authentication", "ConfigurationName", "SkipCACheck", "SkipCNCheck", "SkipRevocationCheck" };
        internal static readonly string[] WinRMAuthentications = { "Default", "Negotiate", "Kerberos", "CredSSP", "Basic" };
        private static readonly string[] LbKeys = { "Name", "Kind", "Settings" };
        private static readonly string[] ArchiveKeys = { "Path", "Url", "Sha256" };
        private static readonly string[] TimeoutKeys = { "DrainSeconds", "StopSeconds", "OfflineSeconds", "StartSeconds", "HealthySeconds", "StableSeconds", "FirstPollMilliseconds", "MaxPollMilliseconds" };
        private static readonly Regex Sha256Pattern = new Regex("^[0-9a-fA-F]{64}$", RegexOptions.CultureInvariant);
        private static readonly Regex NamePattern = new Regex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant);

        /// <summary>Reads a profile; throws <see cref="ProfileException"/> listing every issue.</summary>
        public static ClusterProfile Read(IDictionary data, string? source = null)
        {
            var issues = new List<ProfileIssue>();
            var profile = TryRead(data, source, issues);
            if (issues.Count > 0 || profile is null) throw new ProfileException(source, issues);
            return profile;
        }

        /// <summary>Reads a profile; returns null (and the issues) when it cannot be used.</summary>
        public static ClusterProfile? TryRead(IDictionary data, string? source, List<ProfileIssue> issues)
        {
            if (data is null) throw new ArgumentNullException(nameof(data));
            var r = new Reader(issues);
            r.UnknownKeys(data, TopKeys, "");

            var name = r.Text(data, "Name", "Name", required: true);
            if (name is not null && !NamePattern.IsMatch(name))
                r.Add("ProfileInvalidValue", "Name", $"'{name}' is not a usable cluster name: use letters, digits, '.', '_' or '-' (it names the journal file).");
            var baseUrl = r.Url(data, "BaseUrl", "BaseUrl", required: true);
            BitbucketVersion? target = null;
            var targetText = r.Text(data, "TargetVersion", "TargetVersion", required: true);
            if (targetText is not null && !BitbucketVersion.TryParse(targetText, out target))
                r.Add("ProfileInvalidValue", "TargetVersion", $"'{targetText}' is not a Bitbucket version; expected major.minor.bugfix such as 8.19.4.");

            var archive = ReadArchive(r, data);
            var lbs = ReadLoadBalancers(r, data);
            var ssh = ReadSsh(r, data, "Ssh", SshSettings.None);
            var winrm = ReadWinRM(r, data, "WinRM", WinRMSettings.None);
            var nodes = ReadNodes(r, data, lbs, ssh, winrm);

            var minDisk = r.Number(data, "MinFreeDiskGB", "MinFreeDiskGB", 0, 10000);
            var maxUsers = r.Number(data, "MaxUsersPerNode", "MaxUsersPerNode", 1, 1000000);
            var maxUnavailable = r.Number(data, "MaxUnavailable", "MaxUnavailable", 1, 1000);
            var minInRotation = r.Number(data, "MinNodesInRotation", "MinNodesInRotation", 1, 1000);
            var journal = r.Text(data, "JournalPath", "JournalPath", required: false);
            var blobJournal = ReadJournal(r, data);
            if (journal is not null && blobJournal is not null)
                r.Add("ProfileInvalidValue", "Journal", "Give JournalPath (a folder) or Journal (an Azure Storage container), not both.");
            var timeouts = ReadTimeouts(r, data);
            string? trustedCa = null;
            if (r.Map(data, "Tls", "Tls", required: false) is { } tls)
            {
                r.UnknownKeys(tls, TlsKeys, "Tls.");
                trustedCa = r.Text(tls, "TrustedCertificatePath", "Tls.TrustedCertificatePath", required: false);
                if (trustedCa is not null)
                {
                    if (!System.IO.Path.IsPathRooted(trustedCa) && source is not null && System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(source)) is { } dir)
                        trustedCa = System.IO.Path.Combine(dir, trustedCa);
                    if (!System.IO.File.Exists(trustedCa))
                        r.Add("ProfileInvalidValue", "Tls.TrustedCertificatePath", $"The CA certificate file '{trustedCa}' does not exist on this machine (the upgrade trusts it here, where it runs).");
                }
            }
            Uri? proxy = null;
            if (r.Map(data, "Proxy", "Proxy", required: false) is { } proxyMap)
            {
                r.UnknownKeys(proxyMap, ProxyKeys, "Proxy.");
                proxy = r.Url(proxyMap, "Uri", "Proxy.Uri", required: true);
                if (proxy is not null && !string.IsNullOrEmpty(proxy.UserInfo))
                    r.Add("ProfileInvalidValue", "Proxy.Uri", "Do not put credentials in the proxy URL of a profile; pass -ProxyCredential instead.");
            }

            if (issues.Count > 0) return null;
            return new ClusterProfile(name!, baseUrl!, target!, archive!, nodes, lbs)
            {
                MinFreeDiskBytes = minDisk is double gb ? (long)(gb * 1024 * 1024 * 1024) : 2L * 1024 * 1024 * 1024,
                MaxUsersPerNode = maxUsers is double mu ? (int)mu : null,
                MaxUnavailable = maxUnavailable is double mx ? (int)mx : 1,
                MinNodesInRotation = minInRotation is double mn ? (int)mn : null,
                JournalPath = journal,
                Journal = blobJournal,
                Source = source,
                Timeouts = timeouts,
                TrustedCertificatePath = trustedCa,
                Proxy = proxy,
            };
        }

        private static ReleaseArchive? ReadArchive(Reader r, IDictionary data)
        {
            var a = r.Map(data, "Archive", "Archive", required: true);
            if (a is null) return null;
            r.UnknownKeys(a, ArchiveKeys, "Archive.");
            var path = r.Text(a, "Path", "Archive.Path", required: false);
            var url = r.Url(a, "Url", "Archive.Url", required: false);
            if (path is null && url is null) r.Add("ProfileMissingValue", "Archive", "Give the release archive as Path (a file) or Url (http/https).");
            if (path is not null && url is not null) r.Add("ProfileInvalidValue", "Archive", "Give either Path or Url, not both.");
            var sha = r.Text(a, "Sha256", "Archive.Sha256", required: true);
            if (sha is not null && !Sha256Pattern.IsMatch(sha))
                r.Add("ProfileInvalidValue", "Archive.Sha256", "Expected the 64 hex digits of the archive's SHA-256 (Atlassian publishes it beside each download).");
            return (path ?? url?.ToString()) is string loc && sha is not null ? new ReleaseArchive(loc, sha.ToLowerInvariant()) : null;
        }

        private static List<LoadBalancerProfile> ReadLoadBalancers(Reader r, IDictionary data)
        {
            var result = new List<LoadBalancerProfile>();
            var items = r.List(data, "LoadBalancers", "LoadBalancers", required: false);
            for (var i = 0; i < items.Count; i++)
            {
                var place = $"LoadBalancers[{i}]";
                if (items[i] is not IDictionary lb)
                {
                    r.Add("ProfileInvalidValue", place, "Expected a hashtable @{ Name = ...; Kind = ...; Settings = @{...} }.");
                    continue;
                }
                r.UnknownKeys(lb, LbKeys, place + ".");
                var name = r.Text(lb, "Name", place + ".Name", required: true);
                var kind = r.Text(lb, "Kind", place + ".Kind", required: true);
                var canonical = LoadBalancers.LoadBalancerKinds.Find(kind)?.Name;
                if (kind is not null && canonical is null)
                    r.Add("ProfileInvalidValue", place + ".Kind", $"'{kind}' is not a supported load balancer; use one of {LoadBalancers.LoadBalancerKinds.Names}.");
                var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
                var s = r.Map(lb, "Settings", place + ".Settings", required: false);
                if (s is not null)
                    foreach (DictionaryEntry e in s)
                        settings[Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? ""] = e.Value is null ? null : Convert.ToString(e.Value, CultureInfo.InvariantCulture);
                if (canonical is not null)
                    foreach (var unknown in Adapters.LoadBalancerProfileMapper.UnknownSettings(canonical, settings.Keys))
                        r.Add("ProfileUnknownKey", place + ".Settings." + unknown,
                            $"'{unknown}' is not a setting of {canonical}; it takes {string.Join(", ", LoadBalancers.LoadBalancerKinds.Find(canonical)!.AllSettings.Select(x => x.Name))}. Secrets never go in a profile: use -LoadBalancerCredential or CredentialAsset.");
                if (name is not null && result.Any(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase)))
                    r.Add("ProfileDuplicate", place + ".Name", $"Load balancer '{name}' is defined twice.");
                if (name is not null && canonical is not null) result.Add(new LoadBalancerProfile(name, canonical, settings, place));
            }
            return result;
        }

        private static List<NodeProfile> ReadNodes(Reader r, IDictionary data, List<LoadBalancerProfile> lbs, SshSettings clusterSsh, WinRMSettings clusterWinRM)
        {
            var result = new List<NodeProfile>();
            var taken = new List<(string node, NodeMember member)>();
            var items = r.List(data, "Nodes", "Nodes", required: true);
            if (items.Count == 1)
                r.Add("ProfileInvalidNode", "Nodes", "A rolling upgrade needs at least two nodes: with one node out, the others serve the users.");
            for (var i = 0; i < items.Count; i++)
            {
                var place = $"Nodes[{i}]";
                if (items[i] is not IDictionary n)
                {
                    r.Add("ProfileInvalidNode", place, "Expected a hashtable @{ Name = ...; Url = ...; ... }.");
                    continue;
                }
                r.UnknownKeys(n, NodeKeys, place + ".");
                var name = r.Text(n, "Name", place + ".Name", required: true);
                var apiAddress = r.Text(n, "ApiAddress", place + ".ApiAddress", required: false);
                var url = r.Url(n, "Url", place + ".Url", required: true);
                var remoting = r.Text(n, "Remoting", place + ".Remoting", required: true);
                if (remoting is not null && Adapters.RemotingTarget.TryParse(remoting) is null)
                {
                    r.Add("ProfileInvalidRemoting", place + ".Remoting", Adapters.RemotingTarget.Expected(remoting));
                    remoting = null;
                }
                var installRoot = r.Text(n, "InstallRoot", place + ".InstallRoot", required: true);
                var serviceText = r.Text(n, "Service", place + ".Service", required: false) ?? nameof(ServiceKind.Systemd);
                if (!Enum.TryParse<ServiceKind>(serviceText, true, out var service) || int.TryParse(serviceText, out _))
                    r.Add("ProfileInvalidValue", place + ".Service", $"'{serviceText}' is not a service kind; use Systemd, WindowsService or Script.");

                var ssh = ReadSsh(r, n, place + ".Ssh", clusterSsh);
                var winrm = ReadWinRM(r, n, place + ".WinRM", clusterWinRM);
                var members = ReadMembers(r, n, place, lbs);
                if (name is not null && result.Any(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase)))
                    r.Add("ProfileDuplicate", place + ".Name", $"Node '{name}' is defined twice.");
                foreach (var m in members)
                {
                    var other = taken.FirstOrDefault(t => string.Equals(t.member.LoadBalancer, m.LoadBalancer, StringComparison.OrdinalIgnoreCase)
                        && string.Equals(t.member.Member, m.Member, StringComparison.OrdinalIgnoreCase));
                    if (other.node is not null)
                        r.Add("ProfileDuplicate", m.Place, $"Member '{m.Member}' of load balancer '{m.LoadBalancer}' is also given for node {other.node} ({other.member.Place}): "
                            + "each node needs its own member, or taking one node out of rotation would take the other out (or none).");
                    else taken.Add((name ?? place, m));
                }
                if (name is not null && url is not null && remoting is not null && installRoot is not null)
                    result.Add(new NodeProfile(name, apiAddress, url, remoting, installRoot, service, members, place) { Ssh = ssh, WinRM = winrm });
            }
            return result;
        }

        /// <summary>
        /// The SSH identity and pinned host keys for ssh:// and pwsh+ssh:// nodes (cluster-wide <c>Ssh</c>, a node's own
        /// <c>Ssh</c> wins key by key). The files must exist on this machine: ssh reads them here, not on the node.
        /// </summary>
        private static SshSettings ReadSsh(Reader r, IDictionary data, string place, SshSettings inherited)
        {
            var m = r.Map(data, "Ssh", place, required: false);
            if (m is null) return inherited;
            r.UnknownKeys(m, SshKeys, place + ".");
            string? File(string key, string what)
            {
                var path = r.Text(m, key, place + "." + key, required: false);
                if (path is null) return null;
                var full = SshSettings.ExpandHome(path);
                if (!System.IO.File.Exists(full))
                    r.Add("ProfileInvalidValue", place + "." + key, $"The {what} '{path}' does not exist on this machine (ssh reads it here, where the upgrade runs).");
                return full;
            }
            return new SshSettings(File("KeyFilePath", "private key file") ?? inherited.KeyFilePath, File("KnownHostsFile", "known_hosts file") ?? inherited.KnownHostsFile);
        }

        /// <summary>The WinRM settings of winrm:// nodes (cluster-wide <c>WinRM</c>, a node's own wins key by key).</summary>
        private static WinRMSettings ReadWinRM(Reader r, IDictionary data, string place, WinRMSettings inherited)
        {
            var m = r.Map(data, "WinRM", place, required: false);
            if (m is null) return inherited;
            r.UnknownKeys(m, WinRMKeys, place + ".");
            bool? Flag(string key)
            {
                var text = r.Text(m, key, place + "." + key, required: false);
                if (text is null) return null;
                if (bool.TryParse(text, out var b)) return b;
                r.Add("ProfileInvalidValue", place + "." + key, $"'{text}' is not $true or $false.");
                return null;
            }
            var auth = r.Text(m, "Authentication", place + ".Authentication", required: false);
            if (auth is not null && !WinRMAuthentications.Contains(auth, StringComparer.OrdinalIgnoreCase))
            {
                r.Add("ProfileInvalidValue", place + ".Authentication", $"'{auth}' is not a WinRM authentication; use {string.Join(", ", WinRMAuthentications)}.");
                auth = null;
            }
            return new WinRMSettings
            {
                UseSsl = Flag("UseSSL"),
                Authentication = auth is null ? null : WinRMAuthentications.First(a => string.Equals(a, auth, StringComparison.OrdinalIgnoreCase)),
                ConfigurationName = r.Text(m, "ConfigurationName", place + ".ConfigurationName", required: false),
                SkipCACheck = Flag("SkipCACheck"),
                SkipCNCheck = Flag("SkipCNCheck"),
                SkipRevocationCheck = Flag("SkipRevocationCheck"),
            }.Over(inherited);
        }

        private static List<NodeMember> ReadMembers(Reader r, IDictionary n, string place, List<LoadBalancerProfile> lbs)
        {
            var members = new List<NodeMember>();
            var single = r.Text(n, "Member", place + ".Member", required: false);
            var map = r.Map(n, "Members", place + ".Members", required: false);
            if (single is not null && map is not null)
                r.Add("ProfileInvalidValue", place + ".Member", "Give Member (one load balancer) or Members (@{ <load balancer> = <member> }), not both.");
            if (single is not null)
            {
                if (lbs.Count == 1) members.Add(new NodeMember(lbs[0].Name, single, place + ".Member"));
                else r.Add("ProfileInvalidNode", place + ".Member", $"Member names no load balancer and there are {lbs.Count}; use Members = @{{ <load balancer> = '{single}' }}.");
            }
            if (map is not null)
            {
                foreach (DictionaryEntry e in map)
                {
                    var lbName = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
                    var memberPlace = place + ".Members." + lbName;
                    var lb = lbs.FirstOrDefault(l => string.Equals(l.Name, lbName, StringComparison.OrdinalIgnoreCase));
                    var member = e.Value is null ? null : Convert.ToString(e.Value, CultureInfo.InvariantCulture);
                    if (lb is null) r.Add("ProfileUnknownLoadBalancer", memberPlace, $"No load balancer named '{lbName}' in LoadBalancers.");
                    else if (string.IsNullOrWhiteSpace(member)) r.Add("ProfileMissingValue", memberPlace, "The member name is empty.");
                    else members.Add(new NodeMember(lb.Name, member!, memberPlace));
                }
            }
            foreach (var lb in lbs)
                if (!members.Any(m => m.LoadBalancer == lb.Name))
                    r.Add("ProfileInvalidNode", place + (lbs.Count == 1 ? ".Member" : ".Members"), $"The node has no member in load balancer '{lb.Name}': it could not be taken out of rotation.");
            return members;
        }

        private static Journal.BlobJournalSettings? ReadJournal(Reader r, IDictionary data)
        {
            var m = r.Map(data, "Journal", "Journal", required: false);
            if (m is null) return null;
            r.UnknownKeys(m, JournalKeys, "Journal.");
            var count = r.IssueCount;
            var uriText = r.Text(m, "Uri", "Journal.Uri", required: true);
            Uri? uri = null;
            if (uriText is not null && !Journal.JournalStoreFactory.TryParseContainerUri(uriText, out uri, out var why))
                r.Add("ProfileInvalidValue", "Journal.Uri", why!);
            var authText = r.Text(m, "Authentication", "Journal.Authentication", required: false);
            Journal.JournalAuthentication? auth = null;
            if (authText is not null && Enum.TryParse<Journal.JournalAuthentication>(authText, true, out var parsed) && !int.TryParse(authText, out _))
                auth = parsed;
            else if (authText is not null)
                r.Add("ProfileInvalidValue", "Journal.Authentication", $"'{authText}' is not a journal authentication; use ManagedIdentity, SharedKey, Sas or Token.");
            var clientId = r.Text(m, "ClientId", "Journal.ClientId", required: false);
            var prefix = r.Text(m, "BlobPrefix", "Journal.BlobPrefix", required: false) ?? "";
            var lease = r.Number(m, "LeaseSeconds", "Journal.LeaseSeconds", 15, 60);
            var allowHttp = r.Text(m, "AllowHttp", "Journal.AllowHttp", required: false);
            bool allow = false;
            if (allowHttp is not null && !bool.TryParse(allowHttp, out allow))
                r.Add("ProfileInvalidValue", "Journal.AllowHttp", $"'{allowHttp}' is not $true or $false.");
            if (r.IssueCount > count || uri is null) return null;
            return new Journal.BlobJournalSettings(uri)
            {
                Authentication = auth,
                ClientId = clientId,
                BlobPrefix = prefix,
                LeaseSeconds = lease is double l ? (int)l : 60,
                AllowHttp = allow,
            };
        }

        private static UpgradeTimeouts ReadTimeouts(Reader r, IDictionary data)
        {
            var t = new UpgradeTimeouts();
            var m = r.Map(data, "Timeouts", "Timeouts", required: false);
            if (m is null) return t;
            r.UnknownKeys(m, TimeoutKeys, "Timeouts.");
            TimeSpan? Sec(string key) => r.Number(m, key, "Timeouts." + key, 0.1, 86400) is double d ? TimeSpan.FromSeconds(d) : null;
            TimeSpan? Ms(string key) => r.Number(m, key, "Timeouts." + key, 1, 60000) is double d ? TimeSpan.FromMilliseconds(d) : null;
            t.Drain = Sec("DrainSeconds") ?? t.Drain;
            t.Stop = Sec("StopSeconds") ?? t.Stop;
            t.Offline = Sec("OfflineSeconds") ?? t.Offline;
            t.Start = Sec("StartSeconds") ?? t.Start;
            t.Healthy = Sec("HealthySeconds") ?? t.Healthy;
            t.Stable = Sec("StableSeconds") ?? t.Stable;
            t.FirstPollInterval = Ms("FirstPollMilliseconds") ?? t.FirstPollInterval;
            t.MaxPollInterval = Ms("MaxPollMilliseconds") ?? t.MaxPollInterval;
            return t;
        }

        private sealed class Reader
        {
            private readonly List<ProfileIssue> _issues;

            public Reader(List<ProfileIssue> issues) => _issues = issues;

            public void Add(string id, string place, string message) => _issues.Add(new ProfileIssue(id, place, message));

            public int IssueCount => _issues.Count;

            private static bool TryGet(IDictionary d, string key, out object? value)
            {
                foreach (DictionaryEntry e in d)
                {
                    if (string.Equals(Convert.ToString(e.Key, CultureInfo.InvariantCulture), key, StringComparison.OrdinalIgnoreCase))
                    {
                        value = Unwrap(e.Value);
                        return true;
                    }
                }
                value = null;
                return false;
            }

            // Some hosts hand values wrapped in a PSObject; Core does not reference PowerShell, so unwrap by name.
            private static object? Unwrap(object? v)
            {
                if (v is null) return null;
                var t = v.GetType();
                if (t.FullName == "System.Management.Automation.PSObject")
                    return Unwrap(t.GetProperty("BaseObject")?.GetValue(v));
                return v;
            }

            public void UnknownKeys(IDictionary d, string[] known, string prefix)
            {
                foreach (DictionaryEntry e in d)
                {
                    var k = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
                    if (!known.Any(x => string.Equals(x, k, StringComparison.OrdinalIgnoreCase)))
                        Add("ProfileUnknownKey", prefix + k, $"Unknown setting '{k}'; expected one of {string.Join(", ", known)}.");
                }
            }

            public string? Text(IDictionary d, string key, string place, bool required)
            {
                if (!TryGet(d, key, out var v) || v is null || (v is string s0 && string.IsNullOrWhiteSpace(s0)))
                {
                    if (required) Add("ProfileMissingValue", place, $"{key} is required.");
                    return null;
                }
                if (v is IDictionary || (v is IEnumerable && v is not string))
                {
                    Add("ProfileInvalidValue", place, $"{key} must be a single value.");
                    return null;
                }
                return Convert.ToString(v, CultureInfo.InvariantCulture)!.Trim();
            }

            public Uri? Url(IDictionary d, string key, string place, bool required)
            {
                var text = Text(d, key, place, required);
                if (text is null) return null;
                if (!Uri.TryCreate(text, UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps))
                {
                    Add("ProfileInvalidValue", place, $"'{text}' is not an http:// or https:// URL.");
                    return null;
                }
                return u;
            }

            public double? Number(IDictionary d, string key, string place, double min, double max)
            {
                var text = Text(d, key, place, required: false);
                if (text is null) return null;
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
                {
                    Add("ProfileInvalidValue", place, $"'{text}' is not a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.");
                    return null;
                }
                return n;
            }

            public IDictionary? Map(IDictionary d, string key, string place, bool required)
            {
                if (!TryGet(d, key, out var v) || v is null)
                {
                    if (required) Add("ProfileMissingValue", place, $"{key} is required.");
                    return null;
                }
                if (v is IDictionary map) return map;
                Add("ProfileInvalidValue", place, $"{key} must be a hashtable @{{ ... }}.");
                return null;
            }

            public IReadOnlyList<object?> List(IDictionary d, string key, string place, bool required)
            {
                if (!TryGet(d, key, out var v) || v is null)
                {
                    if (required) Add("ProfileMissingValue", place, $"{key} is required: a list @( @{{...}}, @{{...}} ).");
                    return Array.Empty<object?>();
                }
                if (v is IDictionary) return new[] { v };
                if (v is IEnumerable e && v is not string) return e.Cast<object?>().Select(Unwrap).ToList();
                Add("ProfileInvalidValue", place, $"{key} must be a list @( @{{...}}, @{{...}} ).");
                return Array.Empty<object?>();
            }
        }
    }
}
