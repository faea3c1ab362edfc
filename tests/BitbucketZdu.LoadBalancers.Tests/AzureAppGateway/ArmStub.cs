using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using WireMock;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.LoadBalancers.Tests.AzureAppGateway;

/// <summary>
/// Azure Resource Manager for one Application Gateway (api-version 2024-05-01 shapes), plus the token endpoints:
/// IMDS, Azure Automation's identity endpoint and Entra ID client credentials. Gateway GET returns an ETag; PUT honours
/// If-Match (412 on mismatch), answers 201 + Azure-AsyncOperation, and the operation reports InProgress once, then
/// Succeeded. backendhealth is POST → 202 + Location → 200. Faults (409, 429, LRO failure) are queued per test;
/// tokens in <see cref="ExpiredTokens"/> get 401 ExpiredAuthenticationToken, in <see cref="ForbiddenTokens"/> 403.
/// </summary>
public sealed class ArmStub : IDisposable
{
    public const string GatewayId = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-bb/providers/Microsoft.Network/applicationGateways/gw-bb";
    private const string PoolId = GatewayId + "/backendAddressPools/bb-pool";
    private const string SettingsId = GatewayId + "/backendHttpSettingsCollection/bb-http";
    private readonly object _gate = new();
    private JsonObject _gateway;
    private int _etag = 1;
    private int _tokenSerial;
    private readonly Dictionary<string, int> _operationPolls = new();

    public ArmStub(int drainSeconds = 1)
    {
        _gateway = JsonNode.Parse($$$"""
        {"name":"gw-bb","id":"{{{GatewayId}}}","type":"Microsoft.Network/applicationGateways","location":"westeurope",
         "properties":{"provisioningState":"Succeeded","operationalState":"Running",
          "sku":{"name":"Standard_v2","tier":"Standard_v2","capacity":2},
          "backendAddressPools":[
            {"name":"bb-pool","id":"{{{PoolId}}}","properties":{"provisioningState":"Succeeded","backendAddresses":[{"ipAddress":"10.0.0.11"},{"ipAddress":"10.0.0.12"}]}},
            {"name":"other-pool","id":"{{{GatewayId}}}/backendAddressPools/other-pool","properties":{"backendAddresses":[{"fqdn":"other.corp"}]}}],
          "backendHttpSettingsCollection":[
            {"name":"bb-http","id":"{{{SettingsId}}}","properties":{"port":7990,"protocol":"Http","cookieBasedAffinity":"Enabled",
             "connectionDraining":{"enabled":true,"drainTimeoutInSec":{{{drainSeconds}}}},"requestTimeout":60}}],
          "requestRoutingRules":[
            {"name":"bb-rule","id":"{{{GatewayId}}}/requestRoutingRules/bb-rule","properties":{"ruleType":"Basic","priority":100,
             "backendAddressPool":{"id":"{{{PoolId}}}"},"backendHttpSettings":{"id":"{{{SettingsId}}}"} } } ] } }
        """)!.AsObject();
        Server = WireMockServer.Start();
        Server.Given(Request.Create().WithPath(new WildcardMatcher("/*")).UsingAnyMethod()).RespondWith(Response.Create().WithCallback(req =>
        {
            lock (_gate)
            {
                Log.Enqueue($"{req.Method} {req.Path} {Stub.Header(req, "If-Match")}".TrimEnd());
                AllRequests.Enqueue(req.Method + " " + req.Url + " " + string.Join(";", req.Headers?.Select(h => h.Key + "=" + string.Join(",", h.Value)) ?? Array.Empty<string>()) + " " + req.Body);
                return Handle(req);
            }
        }));
    }

    public WireMockServer Server { get; }
    public Uri BaseUri => new(Server.Url + "/");
    public ConcurrentQueue<string> Log { get; } = new();
    /// <summary>Everything received, to prove no secret went anywhere it should not.</summary>
    public ConcurrentQueue<string> AllRequests { get; } = new();
    public HashSet<string> ValidTokens { get; } = new();
    public HashSet<string> ExpiredTokens { get; } = new();
    public HashSet<string> ForbiddenTokens { get; } = new();
    public Queue<int> PutFaults { get; } = new();       // 409 or 429 before the next PUT succeeds
    public bool FailNextOperation { get; set; }
    public bool ConcurrentEditBeforeNextPut { get; set; }
    /// <summary>Reports for an address 'Down' this many times before 'Up'.</summary>
    public int HealthDownPolls { get; set; }
    public bool FirstTokenExpired { get; set; }
    public string IdentityHeader { get; } = "identity-header-" + Guid.NewGuid().ToString("N")[..6];

    public string[] PoolAddresses()
    {
        lock (_gate) return Pool()["properties"]!["backendAddresses"]!.AsArray().Select(a => (a!["ipAddress"] ?? a["fqdn"])!.GetValue<string>()).ToArray();
    }

    public string? Tag(string name)
    {
        lock (_gate) return _gateway["tags"]?[name]?.GetValue<string>();
    }

    public string[] OtherPoolAddresses()
    {
        lock (_gate) return _gateway["properties"]!["backendAddressPools"]![1]!["properties"]!["backendAddresses"]!.AsArray().Select(a => (a!["ipAddress"] ?? a["fqdn"])!.GetValue<string>()).ToArray();
    }

    private JsonObject Pool() => _gateway["properties"]!["backendAddressPools"]![0]!.AsObject();
    private string ETag => $"W/\"etag-{_etag}\"";

    private ResponseMessage Handle(IRequestMessage req)
    {
        var path = req.Path;
        // Token endpoints
        if (path == "/metadata/identity/oauth2/token")
            return Stub.Header(req, "Metadata") == "true" ? IssueToken() : Stub.Json(400, """{"error":"invalid_request","error_description":"Required metadata header not specified"}""");
        if (path == "/automation/identity")
            return Stub.Header(req, "X-IDENTITY-HEADER") == IdentityHeader ? IssueToken() : Stub.Json(400, """{"Message":"No managed identity was found for Automation account"}""");
        if (path.EndsWith("/oauth2/v2.0/token", StringComparison.Ordinal))
            return req.Body?.Contains("client_secret=" + Uri.EscapeDataString(Canary.Password)) == true && req.Body.Contains("grant_type=client_credentials")
                ? IssueToken() : Stub.Json(401, """{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}""");

        var auth = Stub.Header(req, "Authorization") ?? "";
        var token = auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : "";
        if (ExpiredTokens.Contains(token))
            return Stub.Json(401, """{"error":{"code":"ExpiredAuthenticationToken","message":"The access token expiry UTC time '11/26/2026 10:00:00 AM' is earlier than current UTC time."}}""");
        if (!ValidTokens.Contains(token) && !ForbiddenTokens.Contains(token))
            return Stub.Json(401, """{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}""");
        if (Stub.Query(req, "api-version") != "2024-05-01")
            return Stub.Json(400, """{"error":{"code":"InvalidApiVersionParameter","message":"bad api-version"}}""");

        if (path.StartsWith("/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Network/locations/westeurope/operations/", StringComparison.Ordinal))
        {
            var id = path[(path.LastIndexOf('/') + 1)..];
            var polls = _operationPolls.TryGetValue(id, out var n) ? n : 0;
            _operationPolls[id] = polls + 1;
            if (polls == 0) return Stub.Json(200, """{"status":"InProgress"}""", ("Retry-After", "0"));
            if (id.StartsWith("fail", StringComparison.Ordinal))
                return Stub.Json(200, """{"status":"Failed","error":{"code":"ApplicationGatewayBackendAddressPoolInvalid","message":"The backend pool is invalid."}}""");
            return Stub.Json(200, """{"status":"Succeeded"}""");
        }
        if (path == GatewayId + "/backendhealth/results/1") return Health();
        if (!path.StartsWith(GatewayId, StringComparison.OrdinalIgnoreCase))
            return Stub.Json(404, "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"The Resource 'Microsoft.Network/applicationGateways/" + path[(path.LastIndexOf('/') + 1)..] + "' under resource group 'rg-bb' was not found.\"}}");
        if (ForbiddenTokens.Contains(token) && req.Method != "GET")
            return Stub.Json(403, """{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization to perform action 'Microsoft.Network/applicationGateways/write'."}}""");

        if (path == GatewayId + "/backendhealth" && req.Method == "POST")
            return Stub.Json(202, "", ("Location", Server.Url + GatewayId + "/backendhealth/results/1?api-version=2024-05-01"), ("Retry-After", "0"));
        if (path == GatewayId && req.Method == "GET")
            return Stub.Json(200, WithEtag().ToJsonString(), ("ETag", ETag));
        if (path == GatewayId && req.Method == "PUT")
        {
            if (ConcurrentEditBeforeNextPut)
            {
                ConcurrentEditBeforeNextPut = false;
                _gateway["properties"]!["backendAddressPools"]![1]!["properties"]!["backendAddresses"]!.AsArray().Add(new JsonObject { ["fqdn"] = "added-by-someone-else.corp" });
                _etag++;
            }
            if (PutFaults.Count > 0)
            {
                var fault = PutFaults.Dequeue();
                return fault == 429
                    ? Stub.Json(429, """{"error":{"code":"TooManyRequests","message":"Number of write requests exceeded the limit."}}""", ("Retry-After", "1"))
                    : Stub.Json(409, """{"error":{"code":"AnotherOperationInProgress","message":"Another operation on this or dependent resource is in progress."}}""", ("Retry-After", "1"));
            }
            if (Stub.Header(req, "If-Match") is string ifMatch && ifMatch != ETag)
                return Stub.Json(412, """{"error":{"code":"PreconditionFailed","message":"The condition specified using HTTP conditional header(s) is not met."}}""");
            var body = JsonNode.Parse(req.Body!)!.AsObject();
            var opId = (FailNextOperation ? "fail-" : "op-") + Guid.NewGuid().ToString("N")[..8];
            if (!FailNextOperation)
            {
                body.Remove("etag");
                _gateway = body;
                _etag++;
            }
            FailNextOperation = false;
            return Stub.Json(201, WithEtag().ToJsonString(),
                ("Azure-AsyncOperation", $"{Server.Url}/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Network/locations/westeurope/operations/{opId}?api-version=2024-05-01"),
                ("Retry-After", "0"));
        }
        return Stub.Json(405, """{"error":{"code":"MethodNotAllowed","message":"not supported by the stub"}}""");
    }

    private JsonObject WithEtag()
    {
        var copy = JsonNode.Parse(_gateway.ToJsonString())!.AsObject();
        copy["etag"] = ETag;
        return copy;
    }

    private ResponseMessage Health()
    {
        var servers = new JsonArray(PoolAddressesUnlocked().Select(a => (JsonNode)new JsonObject
        {
            ["address"] = a,
            ["health"] = HealthDownPolls-- > 0 ? "Down" : "Up",
            ["healthProbeLog"] = "Success. Received 200 status code",
        }).ToArray());
        return Stub.Json(200, new JsonObject
        {
            ["backendAddressPools"] = new JsonArray(new JsonObject
            {
                ["backendAddressPool"] = new JsonObject { ["id"] = PoolId },
                ["backendHttpSettingsCollection"] = new JsonArray(new JsonObject
                {
                    ["backendHttpSettings"] = new JsonObject { ["id"] = SettingsId },
                    ["servers"] = servers,
                }),
            }),
        }.ToJsonString());
    }

    private string[] PoolAddressesUnlocked() =>
        Pool()["properties"]!["backendAddresses"]!.AsArray().Select(a => (a!["ipAddress"] ?? a["fqdn"])!.GetValue<string>()).ToArray();

    private ResponseMessage IssueToken()
    {
        var token = "arm-token-" + Interlocked.Increment(ref _tokenSerial);
        if (FirstTokenExpired && _tokenSerial == 1) ExpiredTokens.Add(token); else ValidTokens.Add(token);
        var expiresOn = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        return Stub.Json(200, $$"""{"access_token":"{{token}}","expires_on":"{{expiresOn}}","resource":"https://management.azure.com/","token_type":"Bearer"}""");
    }

    public void Dispose() => Server.Stop();
}
