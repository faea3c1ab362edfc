using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Timing;
using Polly;
using Polly.Retry;

namespace BitbucketZdu.Core.LoadBalancers.AzureAppGateway
{
    /// <summary>
    /// Azure Application Gateway through Azure Resource Manager REST (no Azure SDK). A member is an address of the
    /// backend pool; taking it out removes the address (the gateway then drains it for the connectionDraining timeout of
    /// the pool's HTTP settings), putting it back adds it and backend health must report it Up. A pool cannot be changed
    /// on its own: the whole gateway is read, modified and PUT with If-Match on its ETag (a concurrent edit gets 412
    /// and is re-read, never overwritten), and the long-running operation is followed through Azure-AsyncOperation.
    /// 429 and 409 (another operation in progress) are retried after Retry-After; an expired token is renewed once.
    /// </summary>
    public sealed class AzureAppGatewayLoadBalancer : LoadBalancerBase
    {
        private const int MaxAttempts = 5;
        private readonly HttpClient _http;
        private readonly ResiliencePipeline<ArmReply> _retries;
        private readonly AzureTokenSource _tokens;
        private readonly string _resourceId;
        private readonly ConcurrentDictionary<string, DateTimeOffset> _removedAt = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.OrdinalIgnoreCase);
        private TimeSpan? _drain;

        public AzureAppGatewayLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            _resourceId = "/" + description.Endpoints[0].Trim().Trim('/');
            if (!_resourceId.StartsWith("/subscriptions/", StringComparison.OrdinalIgnoreCase) ||
                _resourceId.IndexOf("/providers/Microsoft.Network/applicationGateways/", StringComparison.OrdinalIgnoreCase) < 0)
                throw new BbException("AzureInvalidGatewayId", BbErrorCategory.InvalidArgument,
                    $"'{description.Endpoints[0]}' is not an Application Gateway resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/applicationGateways/<name>).", description.Endpoints[0]);
            _http = LoadBalancerHttp.CreateClient(description);
            _http.DefaultRequestHeaders.Authorization = null;
            _tokens = new AzureTokenSource(description, _http);
            _retries = BuildRetries();
        }

        private Uri GatewayUrl(string suffix = "") =>
            new Uri(Description.ManagementEndpoint, _resourceId.TrimStart('/') + suffix + "?api-version=" + Description.AzureApiVersion);

        /// <summary>The pool's connection-draining timeout (plus a margin), once the gateway has been read.</summary>
        public override TimeSpan? DefaultDrainTimeout => _drain is TimeSpan d ? d + TimeSpan.FromSeconds(10) : (TimeSpan?)null;

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            var (gateway, _) = await GetGatewayAsync(cancellationToken).ConfigureAwait(false);
            var inPool = Addresses(PoolOf(gateway)).ToList();
            return inPool.Select(a => Member(a, MemberAdminState.Ready, MemberHealth.Unknown, "in pool"))
                .Concat(OutOfPool(gateway).Where(a => !inPool.Contains(a, StringComparer.OrdinalIgnoreCase))
                    .Select(a => Member(a, MemberAdminState.Maintenance, MemberHealth.Unknown, "removed from pool by BitbucketZdu")))
                .ToList();
        }

        public override async Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken)
        {
            var (gateway, _) = await GetGatewayAsync(cancellationToken).ConfigureAwait(false);
            var address = Addresses(PoolOf(gateway)).FirstOrDefault(a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase));
            if (address is null)
            {
                var draining = _removedAt.TryGetValue(name, out var at) && DateTimeOffset.UtcNow - at < (_drain ?? TimeSpan.Zero);
                return Member(name, MemberAdminState.Maintenance, MemberHealth.Unknown, draining ? "removed from pool, draining" : "not in pool");
            }
            var (health, text) = await GetHealthAsync(address, cancellationToken).ConfigureAwait(false);
            return Member(address, MemberAdminState.Ready, health, "in pool, backend health " + text);
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            var add = state == MemberAdminState.Ready;
            for (var attempt = 1; ; attempt++)
            {
                var (gateway, etag) = await GetGatewayAsync(cancellationToken).ConfigureAwait(false);
                var pool = PoolOf(gateway);
                var list = pool["properties"]?["backendAddresses"] as JsonArray;
                if (list is null)
                {
                    list = new JsonArray();
                    ((JsonObject)pool["properties"]!)["backendAddresses"] = list;
                }
                var existing = list.Where(n => AddressOf(n) is string a && string.Equals(a, member.Name, StringComparison.OrdinalIgnoreCase)).ToList();
                if (add == (existing.Count > 0)) break; // already as wanted
                if (add)
                    list.Add(IPAddress.TryParse(member.Name, out _) ? new JsonObject { ["ipAddress"] = member.Name } : new JsonObject { ["fqdn"] = member.Name });
                else
                    foreach (var n in existing) list.Remove(n);
                MarkOut(gateway, member.Name, !add);

                using var put = new HttpRequestMessage(HttpMethod.Put, GatewayUrl())
                { Content = new StringContent(gateway.ToJsonString(), Encoding.UTF8, "application/json") };
                if (etag is not null) put.Headers.TryAddWithoutValidation("If-Match", etag);
                var (response, body) = await SendAsync(put, cancellationToken, allowPreconditionFailed: attempt < MaxAttempts).ConfigureAwait(false);
                using (response)
                {
                    if (response.StatusCode == HttpStatusCode.PreconditionFailed) continue; // someone else changed it: re-read, re-apply
                    await WaitForOperationAsync(response, body, cancellationToken).ConfigureAwait(false);
                }
                if (!add) _removedAt[member.Name] = DateTimeOffset.UtcNow;
                break;
            }

            var (after, _) = await GetGatewayAsync(cancellationToken).ConfigureAwait(false);
            var provisioning = after["properties"]?["provisioningState"]?.GetValue<string>();
            var present = Addresses(PoolOf(after)).Any(a => string.Equals(a, member.Name, StringComparison.OrdinalIgnoreCase));
            var result = present ? Member(member.Name, MemberAdminState.Ready, MemberHealth.Unknown, "in pool") : Member(member.Name, MemberAdminState.Maintenance, MemberHealth.Unknown, "not in pool");
            if (present != add || (provisioning is not null && provisioning != "Succeeded"))
                throw new BbException("LoadBalancerVerifyFailed", BbErrorCategory.InvalidResult,
                    $"After the update, gateway {_resourceId} pool '{Description.Backend}' {(present ? "still lists" : "does not list")} '{member.Name}' (provisioningState {provisioning ?? "?"}). The change did not take effect.", member.Name);
            return add ? (await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false))! : result;
        }

        public override Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var drain = _drain ?? TimeSpan.Zero;
            var elapsed = _removedAt.TryGetValue(member.Name, out var at) ? DateTimeOffset.UtcNow - at : drain;
            var left = drain - elapsed;
            return Task.FromResult(left <= TimeSpan.Zero
                ? new DrainStatus(true, null, "the gateway's connection-draining period has passed")
                : new DrainStatus(false, null, $"the gateway drains existing connections for another {left.TotalSeconds:0} s (connectionDraining {drain.TotalSeconds:0} s)"));
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            (state == MemberAdminState.Ready ? $"add '{member.Name}' to" : $"remove '{member.Name}' from") +
            $" backend pool '{Description.Backend}' of {_resourceId} (GET, modify, PUT with If-Match)";

        private LoadBalancerMember Member(string address, MemberAdminState state, MemberHealth health, string status) =>
            new LoadBalancerMember(address, address, Description.Backend, state, health) { Status = status, LoadBalancer = Description.DisplayName };

        private JsonObject PoolOf(JsonObject gateway)
        {
            var pools = gateway["properties"]?["backendAddressPools"] as JsonArray ?? new JsonArray();
            var pool = pools.OfType<JsonObject>().FirstOrDefault(p => string.Equals(p["name"]?.GetValue<string>(), Description.Backend, StringComparison.OrdinalIgnoreCase));
            if (pool is null)
                throw LoadBalancerErrors.BackendNotFound(Description, _resourceId, string.Join(", ", pools.OfType<JsonObject>().Select(p => p["name"]?.GetValue<string>())));
            if (pool["properties"] is not JsonObject) pool["properties"] = new JsonObject();
            _drain = DrainTimeoutFor(gateway, pool["id"]?.GetValue<string>());
            return pool;
        }

        /// <summary>The longest drain timeout of the HTTP settings that rules route to this pool with (0 when draining is off).</summary>
        private static TimeSpan DrainTimeoutFor(JsonObject gateway, string? poolId)
        {
            var rules = gateway["properties"]?["requestRoutingRules"] as JsonArray ?? new JsonArray();
            var settingIds = rules.OfType<JsonObject>()
                .Where(r => string.Equals(r["properties"]?["backendAddressPool"]?["id"]?.GetValue<string>(), poolId, StringComparison.OrdinalIgnoreCase))
                .Select(r => r["properties"]?["backendHttpSettings"]?["id"]?.GetValue<string>()).Where(id => id is not null).ToList();
            var settings = (gateway["properties"]?["backendHttpSettingsCollection"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
                .Where(s => settingIds.Count == 0 || settingIds.Contains(s["id"]?.GetValue<string>(), StringComparer.OrdinalIgnoreCase));
            var seconds = settings.Select(s => s["properties"]?["connectionDraining"] as JsonObject)
                .Where(c => c is not null && c["enabled"]?.GetValue<bool>() == true)
                .Select(c => c!["drainTimeoutInSec"]?.GetValue<int>() ?? 0).DefaultIfEmpty(0).Max();
            return TimeSpan.FromSeconds(seconds);
        }

        /// <summary>
        /// Addresses this module took out of the pool, kept in a gateway tag (<c>bitbucketzdu-out-&lt;pool&gt;</c>) so that
        /// every later run still sees them as members out of rotation (for -MaxMembersOut and for putting them back).
        /// </summary>
        private string OutTag => "bitbucketzdu-out-" + Description.Backend;

        private IEnumerable<string> OutOfPool(JsonObject gateway) =>
            (gateway["tags"]?[OutTag]?.GetValue<string>() ?? "").Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(a => a.Trim());

        private void MarkOut(JsonObject gateway, string address, bool isOut)
        {
            var set = OutOfPool(gateway).Where(a => !string.Equals(a, address, StringComparison.OrdinalIgnoreCase)).ToList();
            if (isOut) set.Add(address);
            if (gateway["tags"] is not JsonObject tags)
            {
                if (set.Count == 0) return;
                gateway["tags"] = tags = new JsonObject();
            }
            if (set.Count == 0) tags.Remove(OutTag);
            else tags[OutTag] = string.Join(",", set);
        }

        private static IEnumerable<string> Addresses(JsonObject pool) =>
            (pool["properties"]?["backendAddresses"] as JsonArray ?? new JsonArray()).Select(AddressOf).Where(a => a is not null).Select(a => a!);

        private static string? AddressOf(JsonNode? n) => n?["ipAddress"]?.GetValue<string>() ?? n?["fqdn"]?.GetValue<string>();

        private async Task<(JsonObject Gateway, string? ETag)> GetGatewayAsync(CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, GatewayUrl());
            var (response, body) = await SendAsync(request, cancellationToken).ConfigureAwait(false);
            using (response)
            {
                var gateway = JsonNode.Parse(body) as JsonObject
                    ?? throw LoadBalancerErrors.Protocol(Description, "AzureUnexpectedReply", _resourceId, "the gateway is not a JSON object.");
                var etag = gateway["etag"]?.GetValue<string>() ?? response.Headers.ETag?.ToString(); // keep W/ of weak tags
                return (gateway, etag);
            }
        }

        /// <summary>Follows a PUT's long-running operation (Azure-AsyncOperation, else provisioningState) to its end.</summary>
        private async Task WaitForOperationAsync(HttpResponseMessage put, string putBody, CancellationToken cancellationToken)
        {
            var operation = put.Headers.TryGetValues("Azure-AsyncOperation", out var values) ? values.FirstOrDefault() : null;
            var first = Cap(RetryAfter.Of(put) ?? TimeSpan.FromMilliseconds(200));
            if (operation is null)
            {
                var state = (JsonNode.Parse(putBody) as JsonObject)?["properties"]?["provisioningState"]?.GetValue<string>();
                var provisioned = await Poller.System.PollAsync(async c =>
                    {
                        var (gw, _) = await GetGatewayAsync(c).ConfigureAwait(false);
                        return gw["properties"]?["provisioningState"]?.GetValue<string>();
                    }, s => !(s is "Updating" or "Accepted" or "Provisioning"),
                    new PollOptions<string?>(OperationTimeout, new PollSchedule(first, first, 1)).StartingWith(state), cancellationToken).ConfigureAwait(false);
                if (!provisioned.Reached)
                    throw new BbException("AzureOperationTimeout", BbErrorCategory.OperationTimeout, $"Updating gateway {_resourceId} still reports '{provisioned.Value}' after 30 minutes.", _resourceId);
                if (provisioned.Value is "Failed" or "Canceled")
                    throw new BbException("AzureOperationFailed", BbErrorCategory.InvalidResult, $"Updating gateway {_resourceId} ended {provisioned.Value}.", _resourceId);
                return;
            }
            var ended = await Poller.System.PollAsync(async c =>
                {
                    using var poll = new HttpRequestMessage(HttpMethod.Get, operation);
                    var (response, body) = await SendAsync(poll, c).ConfigureAwait(false);
                    using (response)
                        return (Doc: JsonNode.Parse(body) as JsonObject, Pause: RetryAfter.Of(response));
                }, op =>
                {
                    var status = op.Doc?["status"]?.GetValue<string>();
                    if (status is "Failed" or "Canceled")
                    {
                        var err = op.Doc?["error"];
                        throw new BbException("AzureOperationFailed", BbErrorCategory.InvalidResult,
                            $"Updating gateway {_resourceId} ended {status}: {err?["code"]?.GetValue<string>()} {err?["message"]?.GetValue<string>()}".TrimEnd(), _resourceId);
                    }
                    return status == "Succeeded";
                }, new PollOptions<(JsonObject? Doc, TimeSpan? Pause)>(OperationTimeout, new PollSchedule(first, Cap(TimeSpan.FromSeconds(10)), 2))
                {
                    PauseAfter = op => op.Pause is TimeSpan p ? Cap(p) : (TimeSpan?)null,
                }.StartingWith((null, first)), cancellationToken).ConfigureAwait(false);
            if (!ended.Reached)
                throw new BbException("AzureOperationTimeout", BbErrorCategory.OperationTimeout,
                    $"Updating gateway {_resourceId} still reports '{ended.Value.Doc?["status"]?.GetValue<string>()}' after 30 minutes.", _resourceId);
        }

        private static readonly TimeSpan OperationTimeout = TimeSpan.FromMinutes(30);

        /// <summary>Backend health of one address: POST backendhealth (202 + Location), poll Location until 200.</summary>
        private async Task<(MemberHealth, string)> GetHealthAsync(string address, CancellationToken cancellationToken)
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, GatewayUrl("/backendhealth")) { Content = new StringContent("", Encoding.UTF8, "application/json") };
            var (response, body) = await SendAsync(post, cancellationToken).ConfigureAwait(false);
            PollResult<HttpResponseMessage> answered;
            try
            {
                answered = await Poller.System.PollAsync(async c =>
                    {
                        var location = response.Headers.Location!;
                        response.Dispose();
                        using var poll = new HttpRequestMessage(HttpMethod.Get, location);
                        (response, body) = await SendAsync(poll, c).ConfigureAwait(false);
                        return response;
                    }, r => r.StatusCode != HttpStatusCode.Accepted
                        || (r.Headers.Location is null ? throw LoadBalancerErrors.Protocol(Description, "AzureUnexpectedReply", _resourceId, "backendhealth answered 202 without a Location header.") : false),
                    new PollOptions<HttpResponseMessage>(Description.RequestTimeout + Description.RequestTimeout, HealthPolls)
                    {
                        PauseAfter = r => Cap(RetryAfter.Of(r) ?? TimeSpan.FromMilliseconds(200)),
                    }.StartingWith(response), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                response.Dispose();
            }
            if (!answered.Reached) return (MemberHealth.Unknown, "not available in time");
            var health = JsonNode.Parse(body)?["backendAddressPools"] as JsonArray ?? new JsonArray();
            var servers = health.OfType<JsonObject>()
                .Where(p => (p["backendAddressPool"]?["id"]?.GetValue<string>() ?? "").EndsWith("/" + Description.Backend, StringComparison.OrdinalIgnoreCase))
                .SelectMany(p => p["backendHttpSettingsCollection"] as JsonArray ?? new JsonArray())
                .SelectMany(s => s?["servers"] as JsonArray ?? new JsonArray())
                .Where(s => string.Equals(s?["address"]?.GetValue<string>(), address, StringComparison.OrdinalIgnoreCase))
                .Select(s => s?["health"]?.GetValue<string>() ?? "Unknown").ToList();
            if (servers.Count == 0) return (MemberHealth.Down, "not reported yet");
            var text = string.Join(",", servers.Distinct());
            return (servers.All(h => h == "Up") ? MemberHealth.Up : MemberHealth.Down, text);
        }

        /// <summary>One answer of Azure Resource Manager, read.</summary>
        private sealed class ArmReply
        {
            public ArmReply(HttpResponseMessage response, string body)
            {
                Response = response;
                Body = body;
                Status = (int)response.StatusCode;
                if (!response.IsSuccessStatusCode) (Code, Message) = CloudError(body);
            }

            public HttpResponseMessage Response { get; }
            public string Body { get; }
            public int Status { get; }
            public string Code { get; } = "";
            public string Message { get; } = "";

            /// <summary>Throttled, another operation in progress, or a server error: worth the same request again.</summary>
            public bool Transient => Status == 429 || (Status == 409 && (Code == "AnotherOperationInProgress" || Code == "RetryableError")) || Status >= 500;

            public bool TokenExpired => Status == 401 && (Code.IndexOf("Expired", StringComparison.OrdinalIgnoreCase) >= 0 || Code == "InvalidAuthenticationToken");
        }

        /// <summary>
        /// Sends with a bearer token; retries (Polly) 429, 409-in-progress and 5xx after Retry-After (else 2, 4, 8 ... s,
        /// capped) up to <see cref="MaxAttempts"/> attempts; renews an expired token once.
        /// </summary>
        private async Task<(HttpResponseMessage, string)> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken, bool allowPreconditionFailed = false)
        {
            var renewed = false;
            var content = request.Content is null ? null : await request.Content.ReadAsStringAsync().ConfigureAwait(false);
            async Task<ArmReply> SendOnceAsync(CancellationToken ct)
            {
                using var copy = new HttpRequestMessage(request.Method, request.RequestUri);
                foreach (var h in request.Headers) copy.Headers.TryAddWithoutValidation(h.Key, h.Value);
                if (content is not null) copy.Content = new StringContent(content, Encoding.UTF8, "application/json");
                copy.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await _tokens.GetTokenAsync(renewed, ct).ConfigureAwait(false));
                var response = await LoadBalancerHttp.SendAsync(_http, copy, Description, ct).ConfigureAwait(false);
                var body = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                return new ArmReply(response, body);
            }

            var reply = await _retries.ExecuteAsync(async ct =>
            {
                var first = await SendOnceAsync(ct).ConfigureAwait(false);
                if (!first.TokenExpired || !_tokens.CanRefresh || renewed) return first;
                renewed = true;
                first.Response.Dispose();
                return await SendOnceAsync(ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);

            if (reply.Response.IsSuccessStatusCode) return (reply.Response, reply.Body);
            if (reply.Status == 412 && allowPreconditionFailed) return (reply.Response, reply.Body);
            reply.Response.Dispose();
            var (status, code, message) = (reply.Status, reply.Code, reply.Message);
            var where = request.RequestUri!.GetLeftPart(UriPartial.Path);
            if (status == 401)
            {
                var expired = reply.TokenExpired;
                throw new BbException(expired ? "AzureTokenExpired" : "AzureUnauthorized", BbErrorCategory.AuthenticationError,
                    $"Azure Resource Manager refused the token for {where}: {code} {message}".TrimEnd() +
                    (_tokens.CanRefresh ? "" : " Get a new token (e.g. (Get-AzAccessToken).Token) and describe the load balancer again.") + " Nothing was changed.", where);
            }
            if (status == 403)
                throw LoadBalancerErrors.PermissionDenied(Description, "AzurePermissionDenied", where,
                    $"{code} {message} The identity needs Microsoft.Network/applicationGateways/read and /write on the gateway (e.g. the Network Contributor role).");
            if (status == 404)
                throw new BbException("AzureGatewayNotFound", BbErrorCategory.ObjectNotFound, $"{where}: {code} {message} Check the gateway's resource id. Nothing was changed.", where);
            if (status == 412)
                throw new BbException("AzureConcurrentUpdate", BbErrorCategory.ResourceUnavailable, $"{where}: the gateway kept changing underneath (412 {code}); try again later.", where);
            if (status == 409)
                throw new BbException("AzureConflict", BbErrorCategory.ResourceUnavailable, $"{where}: 409 {code} {message}".TrimEnd(), where);
            if (status == 429)
                throw new BbException("AzureThrottled", BbErrorCategory.LimitsExceeded, $"{where}: Azure Resource Manager kept throttling (429) after {MaxAttempts} attempts. Try again later.", where);
            throw LoadBalancerErrors.Protocol(Description, "AzureRequestFailed", where, $"HTTP {status} {code} {message}".TrimEnd());
        }

        private ResiliencePipeline<ArmReply> BuildRetries() => new ResiliencePipelineBuilder<ArmReply>()
            .AddRetry(new RetryStrategyOptions<ArmReply>
            {
                MaxRetryAttempts = MaxAttempts - 1,
                ShouldHandle = args => new ValueTask<bool>(args.Outcome.Result is { Transient: true }),
                DelayGenerator = args => new ValueTask<TimeSpan?>(Cap(RetryAfter.Of(args.Outcome.Result!.Response) ?? TimeSpan.FromSeconds(Math.Pow(2, args.AttemptNumber + 1)))),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Response.Dispose();
                    return default;
                },
            })
            .Build();

        private static readonly PollSchedule HealthPolls = new PollSchedule(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(200), 1);

        private TimeSpan Cap(TimeSpan t) => t > Description.MaxRetryDelay ? Description.MaxRetryDelay : t;

        private static (string Code, string Message) CloudError(string body)
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object)
                    return (e.TryGetProperty("code", out var c) ? c.GetString() ?? "" : "", e.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "");
            }
            catch (JsonException) { }
            return ("", body.Length > 200 ? body.Substring(0, 200) : body);
        }

        public override void Dispose() => _http.Dispose();
    }
}
