using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers.F5BigIp
{
    /// <summary>
    /// F5 BIG-IP LTM through iControl REST. Login: <c>POST /mgmt/shared/authn/login</c> gives a token sent as
    /// <c>X-F5-Auth-Token</c>, renewed before it expires and once on a 401. Members:
    /// <c>GET /mgmt/tm/ltm/pool/~P~pool/members</c>; take out = <c>PATCH {"session":"user-disabled"}</c> (new
    /// connections stop, persistent ones continue), drained when the member's stats <c>serverside.curConns</c> is 0,
    /// then <c>{"state":"user-down"}</c> (forced offline); put back = <c>{"session":"user-enabled","state":"user-up"}</c>,
    /// then the monitor marks it up. An HA pair: the unit whose <c>/mgmt/tm/cm/failover-status</c> is ACTIVE is read and
    /// changed (config sync carries the change to the standby); with ConfigSync false every unit is changed.
    /// </summary>
    public sealed class F5BigIpLoadBalancer : LoadBalancerBase
    {
        private readonly Device[] _devices;
        private readonly string _pool;      // ~Partition~name
        private readonly string _partition;
        private readonly bool _sync;
        private readonly string _provider;
        private Device? _active;

        private sealed class Device
        {
            public Device(Uri baseUri, HttpClient http) { Base = baseUri; Http = http; }
            public Uri Base { get; }
            public HttpClient Http { get; }
            public string? Token { get; set; }
            public DateTimeOffset TokenExpires { get; set; }
        }

        public F5BigIpLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            var urls = description.Endpoints.Select(e =>
                Uri.TryCreate(e, UriKind.Absolute, out var u) && (u.Scheme == "https" || u.Scheme == "http") ? u
                    : throw new BbException("F5InvalidEndpoint", BbErrorCategory.InvalidArgument,
                        $"'{e}' is not a BIG-IP management URL (e.g. https://bigip1.example.com).", e)).ToArray();
            description.Options.TryGetValue("Partition", out var partition);
            var backend = description.Backend.Replace('/', '~');
            if (!backend.StartsWith("~", StringComparison.Ordinal)) backend = "~" + (string.IsNullOrWhiteSpace(partition) ? "Common" : partition!.Trim()) + "~" + backend;
            var parts = backend.Split(new[] { '~' }, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2)
                throw new BbException("F5InvalidPool", BbErrorCategory.InvalidArgument, $"'{description.Backend}' is not a pool ('bitbucket', '/Common/bitbucket' or '~Common~bitbucket').", description.Backend);
            _partition = parts[0];
            _pool = "~" + string.Join("~", parts);
            _sync = !description.Options.TryGetValue("ConfigSync", out var sync) || !string.Equals(sync, "false", StringComparison.OrdinalIgnoreCase);
            _provider = description.Options.TryGetValue("LoginProvider", out var p) && !string.IsNullOrWhiteSpace(p) ? p : "tmos";
            IReadOnlyList<X509Certificate2>? ca = null;
            if (description.Options.TryGetValue("CaCertificateFile", out var caFile) && !string.IsNullOrWhiteSpace(caFile))
            {
                try { ca = Api.ZduTls.LoadCertificates(caFile); }
                catch (Exception ex) when (ex is IOException || ex is ArgumentException || ex is UnauthorizedAccessException)
                {
                    throw new BbException("F5CaCertificateUnreadable", BbErrorCategory.ObjectNotFound, $"The CA certificate file '{caFile}' cannot be read: {ex.Message}", caFile);
                }
            }
            _devices = urls.Select(u => new Device(u, CreateClient(description, ca))).ToArray();
        }

        private static HttpClient CreateClient(LoadBalancerDescription d, IReadOnlyList<X509Certificate2>? ca)
        {
            var policy = LoadBalancerHttp.Policy(d);
            if (ca is not null)
            {
                // The device's certificate must name the host and chain to the given CA: a certificate of any other CA,
                // even one this machine trusts, is refused.
                policy.TrustedCertificates = ca;
                policy.OnlyTrustedCertificates = true;
            }
            return Http.HttpClientFactory.Create(policy);
        }

        private string MembersPath => $"/mgmt/tm/ltm/pool/{_pool}/members";

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            var device = await ActiveAsync(cancellationToken).ConfigureAwait(false);
            using var doc = await SendAsync(device, HttpMethod.Get, MembersPath, null, null, cancellationToken).ConfigureAwait(false);
            var members = new List<LoadBalancerMember>();
            if (!doc.RootElement.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
                return members; // a pool without members answers without 'items'
            foreach (var m in items.EnumerateArray())
            {
                var name = Text(m, "name");
                var session = Text(m, "session");
                var stateText = Text(m, "state");
                var state = stateText == "user-down" ? MemberAdminState.Maintenance
                    : session == "user-disabled" ? MemberAdminState.Draining
                    : session is "monitor-enabled" or "user-enabled" ? MemberAdminState.Ready : MemberAdminState.Unknown;
                var health = stateText switch { "up" => MemberHealth.Up, "down" => MemberHealth.Down, _ => MemberHealth.Unknown };
                members.Add(new LoadBalancerMember(name, Text(m, "address"), Description.Backend, state, health)
                {
                    Status = $"{stateText}/{session}",
                    LoadBalancer = Description.DisplayName,
                    Handle = "~" + (Text(m, "partition") is { Length: > 0 } part ? part : _partition) + "~" + name,
                    Instances = new[] { device.Base.Authority },
                });
            }
            return members;
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            var handle = member.Handle ?? (await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false))?.Handle
                ?? throw LoadBalancerErrors.MemberNotFound(Description, member.Name, Array.Empty<LoadBalancerMember>());
            var targets = _sync ? new[] { await ActiveAsync(cancellationToken).ConfigureAwait(false) } : _devices;
            foreach (var device in targets)
                using (await SendAsync(device, new HttpMethod("PATCH"), $"{MembersPath}/{handle}", Body(state), member.Name, cancellationToken).ConfigureAwait(false)) { }
            return await ReadBackAsync(member.Name, state, cancellationToken).ConfigureAwait(false);
        }

        public override async Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var handle = member.Handle ?? (await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false))?.Handle
                ?? throw LoadBalancerErrors.MemberNotFound(Description, member.Name, Array.Empty<LoadBalancerMember>());
            var total = 0;
            foreach (var device in _sync ? new[] { await ActiveAsync(cancellationToken).ConfigureAwait(false) } : _devices)
            {
                using var doc = await SendAsync(device, HttpMethod.Get, $"{MembersPath}/{handle}/stats", null, member.Name, cancellationToken).ConfigureAwait(false);
                total += FindNumber(doc.RootElement, "serverside.curConns")
                    ?? throw LoadBalancerErrors.Protocol(Description, "F5UnexpectedReply", device.Base + MembersPath, "the member's stats have no serverside.curConns.");
            }
            return new DrainStatus(total == 0, total, $"{total} current connection(s) on {member.Name}");
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            $"PATCH {MembersPath}/{member.Handle ?? "~" + _partition + "~" + member.Name} {Body(state)}" + (_sync ? " (active unit)" : " (every unit)");

        private static string Body(MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => "{\"session\":\"user-enabled\",\"state\":\"user-up\"}",
            MemberAdminState.Draining => "{\"session\":\"user-disabled\"}",
            MemberAdminState.Maintenance => "{\"session\":\"user-disabled\",\"state\":\"user-down\"}",
            _ => throw new ArgumentOutOfRangeException(nameof(state)),
        };

        /// <summary>The unit that serves traffic: the only one, or the one whose failover status is ACTIVE.</summary>
        private async Task<Device> ActiveAsync(CancellationToken cancellationToken)
        {
            if (_active is not null) return _active;
            if (_devices.Length == 1) return _active = _devices[0];
            var seen = new List<string>();
            foreach (var d in _devices)
            {
                using var doc = await SendAsync(d, HttpMethod.Get, "/mgmt/tm/cm/failover-status", null, null, cancellationToken).ConfigureAwait(false);
                var status = FindText(doc.RootElement, "status") ?? "?";
                seen.Add($"{d.Base.Authority} {status}");
                if (string.Equals(status, "ACTIVE", StringComparison.OrdinalIgnoreCase)) return _active = d;
            }
            throw new BbException("F5NoActiveUnit", BbErrorCategory.ResourceUnavailable,
                $"No unit of the BIG-IP pair is ACTIVE ({string.Join(", ", seen)}). Nothing was changed.", Description.EndpointText);
        }

        private async Task EnsureTokenAsync(Device d, bool renew, CancellationToken cancellationToken)
        {
            if (!renew && d.Token is not null && DateTimeOffset.UtcNow < d.TokenExpires - TimeSpan.FromSeconds(30)) return;
            if (Description.UserName is null || Description.Password is null)
                throw new BbException("LoadBalancerMissingCredential", BbErrorCategory.AuthenticationError,
                    $"{Description.DisplayName}: BIG-IP iControl REST needs a user name and password (-Credential, or -LoadBalancerCredential in a profile-driven upgrade).", Description.EndpointText);
            var body = JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["username"] = Description.UserName, ["password"] = LoadBalancerHttp.Reveal(Description.Password), ["loginProviderName"] = _provider,
            });
            var url = new Uri(d.Base, "/mgmt/shared/authn/login");
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await LoadBalancerHttp.SendAsync(d.Http, request, Description, cancellationToken).ConfigureAwait(false);
            var text = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Unauthorized || response.StatusCode == HttpStatusCode.Forbidden)
                throw new BbException("F5AuthenticationFailed", BbErrorCategory.AuthenticationError,
                    $"BIG-IP {d.Base.Authority} refused the login of '{Description.UserName}' (HTTP {(int)response.StatusCode}, provider {_provider}). Check the user, its password and its role. Nothing was changed.", d.Base.Authority);
            if (!response.IsSuccessStatusCode)
                throw LoadBalancerErrors.Protocol(Description, "F5RequestFailed", url.ToString(), $"login answered HTTP {(int)response.StatusCode}.");
            try
            {
                using var doc = JsonDocument.Parse(text);
                var token = doc.RootElement.GetProperty("token");
                d.Token = token.GetProperty("token").GetString();
                var timeout = token.TryGetProperty("timeout", out var t) && t.TryGetInt32(out var s) ? s : 1200;
                d.TokenExpires = token.TryGetProperty("expirationMicros", out var e) && e.TryGetInt64(out var micros)
                    ? DateTimeOffset.FromUnixTimeMilliseconds(micros / 1000) : DateTimeOffset.UtcNow.AddSeconds(timeout);
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException)
            {
                throw LoadBalancerErrors.Protocol(Description, "F5UnexpectedReply", url.ToString(), "the login answer has no token.token.");
            }
        }

        private async Task<JsonDocument> SendAsync(Device d, HttpMethod method, string path, string? json, string? member, CancellationToken cancellationToken)
        {
            var url = new Uri(d.Base, path);
            for (var attempt = 0; ; attempt++)
            {
                await EnsureTokenAsync(d, renew: attempt > 0, cancellationToken).ConfigureAwait(false);
                using var request = new HttpRequestMessage(method, url);
                request.Headers.TryAddWithoutValidation("X-F5-Auth-Token", d.Token);
                if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
                using var response = await LoadBalancerHttp.SendAsync(d.Http, request, Description, cancellationToken).ConfigureAwait(false);
                var body = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0) continue; // token expired or revoked: log in again once
                if (response.IsSuccessStatusCode)
                {
                    try { return JsonDocument.Parse(body.Length == 0 ? "{}" : body); }
                    catch (JsonException) { throw LoadBalancerErrors.Protocol(Description, "F5UnexpectedReply", url.GetLeftPart(UriPartial.Path), $"HTTP {(int)response.StatusCode} with a body that is not JSON."); }
                }
                var message = body.Length > 300 ? body.Substring(0, 300) : body;
                try
                {
                    using var err = JsonDocument.Parse(body);
                    if (err.RootElement.TryGetProperty("message", out var m)) message = m.GetString() ?? message;
                }
                catch (JsonException) { }
                var where = url.GetLeftPart(UriPartial.Path);
                var status = (int)response.StatusCode;
                if (status == 404 && member is null) throw LoadBalancerErrors.BackendNotFound(Description, d.Base.Authority);
                if (status == 404) throw LoadBalancerErrors.MemberNotFound(Description, member!, Array.Empty<LoadBalancerMember>());
                if (status == 401 || status == 403)
                    throw LoadBalancerErrors.PermissionDenied(Description, "F5PermissionDenied", where, $"HTTP {status} {message}. The user needs the Operator role (or higher) on partition {_partition}.");
                throw LoadBalancerErrors.Protocol(Description, "F5RequestFailed", where, $"HTTP {status} {message}".Trim());
            }
        }

        private static string Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";

        /// <summary>The first "name": {"value": N} (stats) anywhere below <paramref name="e"/>.</summary>
        private static int? FindNumber(JsonElement e, string name)
        {
            if (e.ValueKind != JsonValueKind.Object) return null;
            foreach (var p in e.EnumerateObject())
            {
                if (p.Name == name && p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("value", out var v) && v.TryGetInt32(out var n)) return n;
                if (FindNumber(p.Value, name) is int found) return found;
            }
            return null;
        }

        /// <summary>The first "name": {"description": "..."} (failover status) anywhere below <paramref name="e"/>.</summary>
        private static string? FindText(JsonElement e, string name)
        {
            if (e.ValueKind != JsonValueKind.Object) return null;
            foreach (var p in e.EnumerateObject())
            {
                if (p.Name == name && p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("description", out var v)) return v.GetString();
                if (FindText(p.Value, name) is string found) return found;
            }
            return null;
        }

        public override void Dispose()
        {
            foreach (var d in _devices) d.Http.Dispose();
        }
    }
}
