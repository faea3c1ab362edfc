using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers.NginxPlus
{
    /// <summary>
    /// NGINX Plus through its REST API (ngx_http_api_module): <c>PATCH /api/N/http/upstreams/U/servers/ID</c> with
    /// <c>drain</c> or <c>down</c>, state and <c>active</c> from <c>GET /api/N/http/upstreams/U</c>. The API version is
    /// the highest the server offers (<c>GET /api/</c>); drain needs version 2 or later.
    /// </summary>
    public sealed class NginxPlusLoadBalancer : LoadBalancerBase
    {
        private readonly HttpClient _http;
        private readonly string _base;
        private int? _version;

        public NginxPlusLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            // Like Apache's: refuse a non-URL now (e.g. 'lb:8080' parses as scheme 'lb'), not at the first change.
            if (!Uri.TryCreate(description.Endpoints[0], UriKind.Absolute, out var url) || (url.Scheme != "http" && url.Scheme != "https"))
                throw new BbException("NginxPlusInvalidEndpoint", BbErrorCategory.InvalidArgument,
                    $"'{description.Endpoints[0]}' is not an NGINX Plus API URL (e.g. https://lb.example.com:8080/api).", description.Endpoints[0]);
            _base = description.Endpoints[0].TrimEnd('/');
            _http = LoadBalancerHttp.CreateClient(description);
        }

        private string UpstreamUrl => $"{_base}/{_version}/http/upstreams/{Uri.EscapeDataString(Description.Backend)}";

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            await EnsureVersionAsync(cancellationToken).ConfigureAwait(false);
            using var doc = await SendAsync(HttpMethod.Get, UpstreamUrl, null, null, cancellationToken).ConfigureAwait(false);
            var members = new List<LoadBalancerMember>();
            if (!doc.RootElement.TryGetProperty("peers", out var peers) || peers.ValueKind != JsonValueKind.Array)
                throw LoadBalancerErrors.Protocol(Description, "NginxPlusUnexpectedReply", UpstreamUrl, "the upstream has no 'peers' array.");
            foreach (var p in peers.EnumerateArray())
            {
                var server = p.GetProperty("server").GetString() ?? "";
                var stateText = p.TryGetProperty("state", out var s) ? s.GetString() ?? "" : "";
                var (state, health) = stateText switch
                {
                    "draining" => (MemberAdminState.Draining, MemberHealth.Unknown),
                    "down" => (MemberAdminState.Maintenance, MemberHealth.Unknown),
                    "up" => (MemberAdminState.Ready, MemberHealth.Up),
                    "unavail" or "unhealthy" => (MemberAdminState.Ready, MemberHealth.Down),
                    "checking" => (MemberAdminState.Ready, MemberHealth.Unknown),
                    _ => (MemberAdminState.Unknown, MemberHealth.Unknown),
                };
                members.Add(new LoadBalancerMember(server, server, Description.Backend, state, health)
                {
                    ActiveConnections = p.TryGetProperty("active", out var a) && a.TryGetInt32(out var n) ? n : (int?)null,
                    Status = stateText,
                    LoadBalancer = Description.DisplayName,
                    Handle = p.TryGetProperty("id", out var id) ? id.GetRawText() : null,
                });
            }
            return members;
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            await EnsureVersionAsync(cancellationToken).ConfigureAwait(false);
            var id = member.Handle ?? (await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false))?.Handle
                ?? throw LoadBalancerErrors.MemberNotFound(Description, member.Name, Array.Empty<LoadBalancerMember>());
            using (await SendAsync(new HttpMethod("PATCH"), $"{UpstreamUrl}/servers/{id}", Body(state), member.Name, cancellationToken).ConfigureAwait(false)) { }
            return await ReadBackAsync(member.Name, state, cancellationToken).ConfigureAwait(false);
        }

        protected override string ActiveUnit => "active connection(s)";

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            $"PATCH {_base}/{_version?.ToString() ?? "<N>"}/http/upstreams/{Description.Backend}/servers/{member.Handle ?? "?"} {Body(state)} (server {member.Name})";

        private static string Body(MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => "{\"drain\":false,\"down\":false}",
            MemberAdminState.Draining => "{\"drain\":true}",
            MemberAdminState.Maintenance => "{\"down\":true}",
            _ => throw new ArgumentOutOfRangeException(nameof(state)),
        };

        private async Task EnsureVersionAsync(CancellationToken cancellationToken)
        {
            if (_version is not null) return;
            using var doc = await SendAsync(HttpMethod.Get, _base + "/", null, null, cancellationToken).ConfigureAwait(false);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw LoadBalancerErrors.Protocol(Description, "NginxPlusUnexpectedReply", _base, "GET /api/ did not return the list of API versions. Is this the NGINX Plus API location?");
            var versions = doc.RootElement.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.Number).Select(v => v.GetInt32()).ToList();
            if (versions.Count == 0 || versions.Max() < 2)
                throw LoadBalancerErrors.Protocol(Description, "NginxPlusApiTooOld", _base, $"the API offers versions [{string.Join(",", versions)}]; draining needs version 2 or later (NGINX Plus R14+).");
            _version = versions.Max();
        }

        private async Task<JsonDocument> SendAsync(HttpMethod method, string url, string? json, string? member, CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(method, url);
            if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            using var response = await LoadBalancerHttp.SendAsync(_http, request, Description, cancellationToken).ConfigureAwait(false);
            var body = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                try { return JsonDocument.Parse(body.Length == 0 ? "{}" : body); }
                catch (JsonException) { throw LoadBalancerErrors.Protocol(Description, "NginxPlusUnexpectedReply", url, $"HTTP {(int)response.StatusCode} with a body that is not JSON."); }
            }
            string code = "", text = body.Length > 300 ? body.Substring(0, 300) : body;
            try
            {
                using var err = JsonDocument.Parse(body);
                if (err.RootElement.TryGetProperty("error", out var e))
                {
                    code = e.TryGetProperty("code", out var c) ? c.GetString() ?? "" : "";
                    text = e.TryGetProperty("text", out var t) ? t.GetString() ?? "" : text;
                }
            }
            catch (JsonException) { }
            var status = (int)response.StatusCode;
            var detail = $"HTTP {status} {code} {text}".Replace("  ", " ").Trim();
            switch (code)
            {
                case "UpstreamNotFound": throw LoadBalancerErrors.BackendNotFound(Description, _base);
                case "UpstreamServerNotFound": throw LoadBalancerErrors.MemberNotFound(Description, member ?? url, Array.Empty<LoadBalancerMember>());
                case "MethodDisabled":
                    throw LoadBalancerErrors.PermissionDenied(Description, "NginxPlusPermissionDenied", url, $"{detail}. The API is read-only: set 'api write=on;' in its location.");
                case "UpstreamStatic":
                    throw LoadBalancerErrors.Protocol(Description, "NginxPlusUpstreamStatic", url, $"{detail}. The upstream needs a shared memory 'zone' to be changed at run time. Nothing was changed.");
            }
            if (response.StatusCode == HttpStatusCode.Unauthorized || response.StatusCode == HttpStatusCode.Forbidden)
                throw LoadBalancerErrors.PermissionDenied(Description, "NginxPlusPermissionDenied", url, $"{detail}. Check the credentials and the 'allow'/'auth_basic' rules of the API location.");
            throw LoadBalancerErrors.Protocol(Description, "NginxPlusRequestFailed", url, detail);
        }

        public override void Dispose() => _http.Dispose();
    }
}
