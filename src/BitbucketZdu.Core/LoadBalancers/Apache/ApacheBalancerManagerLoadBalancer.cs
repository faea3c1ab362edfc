using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using System.Xml;
using System.Xml.Linq;

namespace BitbucketZdu.Core.LoadBalancers.Apache
{
    /// <summary>
    /// Apache httpd mod_proxy_balancer through its balancer-manager page: the member list, status flags, busy
    /// count and nonce from <c>?xml=1</c>; changes are form POSTs with the nonce and a same-host Referer (httpd 2.4.41+
    /// silently drops parameters without it). httpd answers 200 even when it ignores a change, so every change is
    /// read back. Drain = flag N, maintenance = flag D (disabled).
    /// </summary>
    public sealed class ApacheBalancerManagerLoadBalancer : LoadBalancerBase
    {
        private static readonly XNamespace Ns = "http://httpd.apache.org";
        private readonly HttpClient _http;
        private readonly Uri _url;

        public ApacheBalancerManagerLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            if (!Uri.TryCreate(description.Endpoints[0], UriKind.Absolute, out var url) || (url.Scheme != "http" && url.Scheme != "https"))
                throw new BbException("ApacheInvalidEndpoint", BbErrorCategory.InvalidArgument,
                    $"'{description.Endpoints[0]}' is not a balancer-manager URL (e.g. https://lb.example.com/balancer-manager).", description.Endpoints[0]);
            _url = url;
            _http = LoadBalancerHttp.CreateClient(description);
        }

        private string BalancerName => Description.Backend.StartsWith("balancer://", StringComparison.OrdinalIgnoreCase)
            ? Description.Backend.Substring("balancer://".Length) : Description.Backend;

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken) =>
            (await ReadAsync(cancellationToken).ConfigureAwait(false)).Members;

        private async Task<(IReadOnlyList<LoadBalancerMember> Members, string? Nonce)> ReadAsync(CancellationToken cancellationToken)
        {
            var xmlText = await SendAsync(HttpMethod.Get, new Uri(_url, _url.AbsolutePath + "?xml=1"), null, cancellationToken).ConfigureAwait(false);
            XDocument? doc = null;
            try { doc = XDocument.Parse(xmlText); }
            catch (XmlException) { }
            if (doc?.Root is null || doc.Root.Name != Ns + "manager")
            {
                if (xmlText.IndexOf("Load Balancer Manager", StringComparison.OrdinalIgnoreCase) >= 0)
                    throw new BbException("ApacheRefererRejected", BbErrorCategory.SecurityError,
                        $"balancer-manager {_url} ignored the request's parameters (it returned the HTML page for ?xml=1). httpd does that when the Referer's host " +
                        "differs from its server name (ServerName with UseCanonicalName On, else the Host header; AH10187 in its error log). " +
                        "Use the host name httpd knows itself by in the endpoint URL. Nothing was changed.", _url.ToString());
                throw LoadBalancerErrors.Protocol(Description, "ApacheUnexpectedReply", _url.ToString(),
                    "the page is not the balancer-manager XML. Is the URL the <Location> with 'SetHandler balancer-manager'? Nothing was changed.");
            }
            var balancers = doc.Descendants(Ns + "balancer").ToList();
            var balancer = balancers.FirstOrDefault(b => string.Equals((string?)b.Element(Ns + "name"), "balancer://" + BalancerName, StringComparison.OrdinalIgnoreCase));
            if (balancer is null)
                throw LoadBalancerErrors.BackendNotFound(Description, _url.ToString(), string.Join(", ", balancers.Select(b => (string?)b.Element(Ns + "name"))));
            var nonce = (string?)balancer.Element(Ns + "nonce");
            var members = balancer.Descendants(Ns + "worker").Select(w =>
            {
                var name = ((string?)w.Element(Ns + "name") ?? "").Trim();
                var status = ((string?)w.Element(Ns + "status") ?? "").Trim();
                var flags = status.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                var state = flags.Contains("Dis") || flags.Contains("Stop") ? MemberAdminState.Maintenance
                    : flags.Contains("Drn") ? MemberAdminState.Draining : MemberAdminState.Ready;
                var health = flags.Contains("Err") || flags.Contains("HcFl") ? MemberHealth.Down : flags.Contains("Ok") ? MemberHealth.Up : MemberHealth.Unknown;
                var host = (string?)w.Element(Ns + "hostname");
                var port = (string?)w.Element(Ns + "port");
                return new LoadBalancerMember(name, host is null ? null : port is null ? host : host + ":" + port, Description.Backend, state, health)
                {
                    ActiveConnections = int.TryParse((string?)w.Element(Ns + "busy"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var busy) ? busy : (int?)null,
                    Status = status,
                    LoadBalancer = Description.DisplayName,
                };
            }).ToList();
            return (members, nonce);
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            var (members, nonce) = await ReadAsync(cancellationToken).ConfigureAwait(false);
            var current = members.FirstOrDefault(m => string.Equals(m.Name, member.Name, StringComparison.OrdinalIgnoreCase))
                ?? throw LoadBalancerErrors.MemberNotFound(Description, member.Name, members);
            nonce ??= await ReadNonceFromHtmlAsync(cancellationToken).ConfigureAwait(false);
            var form = new List<KeyValuePair<string, string>>
            {
                new("b", BalancerName),
                new("w", current.Name),
                new("nonce", nonce),
            };
            form.AddRange(Flags(state).Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));
            await SendAsync(HttpMethod.Post, _url, new FormUrlEncodedContent(form), cancellationToken).ConfigureAwait(false);

            var after = (await ReadAsync(cancellationToken).ConfigureAwait(false)).Members.First(m => m.Name == current.Name);
            if (after.State != state)
                throw new BbException("ApacheChangeIgnored", BbErrorCategory.InvalidResult,
                    $"balancer-manager {_url} ignored setting '{member.Name}' to {state}: it still reports '{after.Status}'. httpd drops changes silently when the nonce is wrong " +
                    "or the Referer host differs from its server name (AH10187 in the error log); check that the endpoint URL uses the host name httpd answers to.", member.Name);
            return after;
        }

        protected override string ActiveUnit => "busy request(s)";

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            $"POST {_url} b={BalancerName} w={member.Name} {string.Join(" ", Flags(state).Select(f => f.Key + "=" + f.Value))} (with nonce and Referer)";

        private static IEnumerable<KeyValuePair<string, string>> Flags(MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => new Dictionary<string, string> { ["w_status_N"] = "0", ["w_status_D"] = "0", ["w_status_S"] = "0" },
            MemberAdminState.Draining => new Dictionary<string, string> { ["w_status_N"] = "1", ["w_status_D"] = "0", ["w_status_S"] = "0" },
            MemberAdminState.Maintenance => new Dictionary<string, string> { ["w_status_N"] = "0", ["w_status_D"] = "1" },
            _ => throw new ArgumentOutOfRangeException(nameof(state)),
        };

        private async Task<string> ReadNonceFromHtmlAsync(CancellationToken cancellationToken)
        {
            var html = await SendAsync(HttpMethod.Get, _url, null, cancellationToken).ConfigureAwait(false);
            var m = Regex.Match(html, @"[?&](?:amp;)?b=" + Regex.Escape(BalancerName) + @"&(?:amp;)?nonce=([0-9a-fA-F-]+)");
            if (!m.Success)
                throw LoadBalancerErrors.Protocol(Description, "ApacheNonceNotFound", _url.ToString(), $"the page has no nonce for balancer '{BalancerName}'.");
            return m.Groups[1].Value;
        }

        private async Task<string> SendAsync(HttpMethod method, Uri url, HttpContent? content, CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(method, url) { Content = content };
            request.Headers.Referrer = _url; // same host as the request: httpd 2.4.41+ ignores parameters otherwise
            using var response = await LoadBalancerHttp.SendAsync(_http, request, Description, cancellationToken).ConfigureAwait(false);
            var body = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return body;
            if (response.StatusCode == HttpStatusCode.Forbidden || response.StatusCode == HttpStatusCode.Unauthorized)
                throw LoadBalancerErrors.PermissionDenied(Description, "ApachePermissionDenied", _url.ToString(),
                    $"HTTP {(int)response.StatusCode}. Allow this host in the balancer-manager <Location> (Require ip ...) or pass the right credentials.");
            if (response.StatusCode == HttpStatusCode.NotFound)
                throw LoadBalancerErrors.Protocol(Description, "ApacheBalancerManagerNotFound", _url.ToString(), "HTTP 404: no balancer-manager here. Check the URL and 'SetHandler balancer-manager'. Nothing was changed.");
            throw LoadBalancerErrors.Protocol(Description, "ApacheRequestFailed", _url.ToString(), $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
        }

        public override void Dispose() => _http.Dispose();
    }
}
