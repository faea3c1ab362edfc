using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.LoadBalancers.Tests.F5BigIp;

/// <summary>
/// One BIG-IP unit's iControl REST, as far as BitbucketZdu uses it (see README.md for the F5 pages it follows):
/// POST /mgmt/shared/authn/login (token with timeout), X-F5-Auth-Token on every other call, GET /mgmt/tm/cm/failover-status,
/// GET /mgmt/tm/ltm/pool/~P~pool/members, PATCH .../members/~P~member (session, state), GET .../members/~P~member/stats.
/// A disabled member's current connections end one per stats read; a member put back is 'down' for
/// <see cref="MonitorDownReads"/> reads before its monitor marks it 'up'. Errors use F5's {"code","message","errorStack"} body.
/// </summary>
public sealed class F5Stub : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _tokens = new();

    public sealed class Member
    {
        public string Name = "";
        public string Address = "";
        public string Session = "monitor-enabled";
        public string State = "up";
        public int CurConns;
        public int DownReads;
    }

    public F5Stub(string partition = "Common", string pool = "bitbucket", System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        Partition = partition;
        Pool = pool;
        Pools[pool] = Members;
        Members.Add(new Member { Name = "10.0.0.11:7990", Address = "10.0.0.11", CurConns = 3 });
        Members.Add(new Member { Name = "10.0.0.12:7990", Address = "10.0.0.12", CurConns = 2 });
        Server = certificate is null ? WireMockServer.Start() : WireMockServer.Start(new WireMock.Settings.WireMockServerSettings
        {
            Port = FreePort.Next(), UseSSL = true, HostingScheme = WireMock.Types.HostingScheme.Https,
            CertificateSettings = new WireMock.Settings.WireMockCertificateSettings { X509Certificate = certificate },
        });
        Server.Given(Request.Create().WithPath(new WildcardMatcher("/mgmt/*")).UsingAnyMethod()).RespondWith(Response.Create().WithCallback(req =>
        {
            AllRequests.Enqueue($"{req.Method} {req.Path} {string.Join(";", req.Headers?.Select(h => h.Key + "=" + string.Join(",", h.Value)) ?? Array.Empty<string>())} {req.Body}");
            lock (_gate) return Handle(req);
        }));
    }

    public WireMockServer Server { get; }
    public string Url => Server.Urls[0].Replace("0.0.0.0", "localhost").Replace("127.0.0.1", "localhost");
    public string Partition { get; }
    public string Pool { get; }
    /// <summary>The members of <see cref="Pool"/>.</summary>
    public List<Member> Members { get; } = new();
    /// <summary>Every pool of the partition by name: <see cref="Pool"/> and any other (e.g. an SSH pool, F5DataPlane.StartTcp); guarded by <see cref="Gate"/>.</summary>
    public Dictionary<string, List<Member>> Pools { get; } = new();
    public string Status { get; set; } = "ACTIVE";
    public int TokenSeconds { get; set; } = 1200;
    public int MonitorDownReads { get; set; } = 2;
    /// <summary>Set by F5DataPlane: CurConns counts real requests in flight instead of ending one per stats read.</summary>
    public bool LiveConnections { get; set; }
    /// <summary>Guards <see cref="Members"/> (the data plane changes CurConns while the API reads it).</summary>
    public object Gate => _gate;
    public int Logins { get; private set; }
    public List<string> Patches { get; } = new();
    /// <summary>The member's current connections when each of <see cref="Patches"/> arrived.</summary>
    public List<int> ConnectionsAtPatch { get; } = new();
    public ConcurrentQueue<string> AllRequests { get; } = new();

    /// <summary>Every token is revoked (as after a reboot or a token DELETE): the next call answers 401.</summary>
    public void RevokeTokens()
    {
        lock (_gate) _tokens.Clear();
    }

    private static WireMock.ResponseMessage Error(int code, string message) =>
        Stub.Json(code, JsonSerializer.Serialize(new { code, message, errorStack = Array.Empty<string>(), apiError = 3 }));

    private WireMock.ResponseMessage Handle(WireMock.IRequestMessage req)
    {
        var path = req.Path;
        if (path == "/mgmt/shared/authn/login" && req.Method == "POST")
        {
            var body = JsonNode.Parse(req.Body ?? "{}")!;
            if ((string?)body["username"] != "f5ops" || (string?)body["password"] != Canary.Password || (string?)body["loginProviderName"] != "tmos")
                return Error(401, "Authentication failed.");
            Logins++;
            var token = "TOKEN" + Guid.NewGuid().ToString("N")[..12].ToUpperInvariant();
            var expires = DateTimeOffset.UtcNow.AddSeconds(TokenSeconds);
            _tokens[token] = expires;
            return Stub.Json(200, JsonSerializer.Serialize(new
            {
                username = "f5ops", loginProviderName = "tmos",
                token = new { token, name = token, userName = "f5ops", timeout = TokenSeconds, expirationMicros = expires.ToUnixTimeMilliseconds() * 1000 },
            }));
        }
        var presented = Stub.Header(req, "X-F5-Auth-Token") ?? "";
        if (!_tokens.TryGetValue(presented, out var until) || until < DateTimeOffset.UtcNow)
            return Error(401, $"X-F5-Auth-Token does not exist.");

        if (path == "/mgmt/tm/cm/failover-status")
            return Stub.Json(200, "{\"kind\":\"tm:cm:failover-status:failover-statusstats\",\"selfLink\":\"https://localhost/mgmt/tm/cm/failover-status?ver=17.1.0\","
                + "\"entries\":{\"https://localhost/mgmt/tm/cm/failover-status/0\":{\"nestedStats\":{\"entries\":{"
                + "\"color\":{\"description\":\"green\"},\"status\":{\"description\":\"" + Status + "\"},\"summary\":{\"description\":\"1/1 " + Status.ToLowerInvariant() + "\"}}}}}}");

        if (!path.StartsWith("/mgmt/tm/ltm/pool/", StringComparison.Ordinal))
            return Error(404, $"Public URI path not registered: {path}");
        var pool = Pools.Keys.FirstOrDefault(p => path == $"/mgmt/tm/ltm/pool/~{Partition}~{p}/members" || path.StartsWith($"/mgmt/tm/ltm/pool/~{Partition}~{p}/members/", StringComparison.Ordinal));
        if (pool is null)
            return Error(404, $"01020036:3: The requested Pool ({path.Split('/')[5].Replace('~', '/')}) was not found.");
        var members = Pools[pool];
        var poolPath = $"/mgmt/tm/ltm/pool/~{Partition}~{pool}/members";
        var rest = path[poolPath.Length..].TrimStart('/');
        if (rest.Length == 0 && req.Method == "GET")
            return Stub.Json(200, new JsonObject
            {
                ["kind"] = "tm:ltm:pool:members:memberscollectionstate",
                ["items"] = new JsonArray(members.Select(m => (JsonNode)MemberJson(m)).ToArray()),
            }.ToJsonString());
        var stats = rest.EndsWith("/stats", StringComparison.Ordinal);
        var id = stats ? rest[..^"/stats".Length] : rest;
        var member = members.FirstOrDefault(m => id == $"~{Partition}~{m.Name}");
        if (member is null)
            return Error(404, $"01020036:3: The requested Pool Member (/{Partition}/{pool} /{Partition}/{id.Split('~').Last()}) was not found.");
        if (stats && req.Method == "GET")
        {
            var conns = member.CurConns;
            if (!LiveConnections && member.Session == "user-disabled" && member.CurConns > 0) member.CurConns--; // persistent connections end one by one
            var key = $"https://localhost/mgmt/tm/ltm/pool/~{Partition}~{pool}/members/~{Partition}~{member.Name}/~{Partition}~{member.Name}/stats";
            return Stub.Json(200, new JsonObject
            {
                ["kind"] = "tm:ltm:pool:members:membersstats",
                ["entries"] = new JsonObject { [key] = new JsonObject { ["nestedStats"] = new JsonObject { ["entries"] = new JsonObject
                {
                    ["addr"] = new JsonObject { ["description"] = member.Address },
                    ["serverside.curConns"] = new JsonObject { ["value"] = conns },
                    ["serverside.totConns"] = new JsonObject { ["value"] = 100 },
                    ["status.availabilityState"] = new JsonObject { ["description"] = member.State == "up" ? "available" : "offline" },
                } } } },
            }.ToJsonString());
        }
        if (req.Method == "PATCH" && !stats)
        {
            var body = JsonNode.Parse(req.Body ?? "{}")!.AsObject();
            foreach (var (k, v) in body)
            {
                var value = (string?)v;
                if (k == "session" && value is not ("user-enabled" or "user-disabled"))
                    return Error(400, $"invalid property value \"session\":\"{value}\"");
                if (k == "state" && value is not ("user-up" or "user-down"))
                    return Error(400, $"invalid property value \"state\":\"{value}\"");
            }
            Patches.Add($"{member.Name} {req.Body}");
            ConnectionsAtPatch.Add(member.CurConns);
            if ((string?)body["session"] is string s) member.Session = s == "user-enabled" ? "monitor-enabled" : s;
            if ((string?)body["state"] is string st)
            {
                member.State = st == "user-down" ? "user-down" : "down"; // user-up: the monitor decides
                member.DownReads = st == "user-up" ? MonitorDownReads : 0;
            }
            return Stub.Json(200, MemberJson(member).ToJsonString());
        }
        return Error(405, "Method not allowed");
    }

    private JsonObject MemberJson(Member m)
    {
        if (m.State == "down" && m.DownReads-- <= 0) m.State = "up";
        return new JsonObject
        {
            ["kind"] = "tm:ltm:pool:members:membersstate", ["name"] = m.Name, ["partition"] = Partition,
            ["fullPath"] = $"/{Partition}/{m.Name}", ["address"] = m.Address, ["session"] = m.Session, ["state"] = m.State,
            ["monitor"] = "default", ["connectionLimit"] = 0, ["ratio"] = 1,
        };
    }

    public void Dispose() => Server.Stop();
}
