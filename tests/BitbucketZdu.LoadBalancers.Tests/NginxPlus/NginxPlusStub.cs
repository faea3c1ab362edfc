using System.Text.Json;
using System.Text.Json.Nodes;
using BitbucketZdu.LoadBalancers.Tests.Support;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.LoadBalancers.Tests.NginxPlus;

/// <summary>
/// The NGINX Plus API (ngx_http_api_module, OpenAPI nginx_api.yaml) for one upstream 'bitbucket' with two peers, as
/// far as BitbucketZdu uses it: GET /api/, GET /api/9/http/upstreams/{u}, PATCH .../servers/{id}. A drained peer's
/// 'active' count falls by one per read; errors use the documented {"error":{"status","text","code"}} body.
/// </summary>
public sealed class NginxPlusStub : IDisposable
{
    private readonly object _gate = new();
    private readonly List<Peer> _peers = new()
    {
        new Peer { Id = 0, Server = "10.0.0.11:7990", Active = 3 },
        new Peer { Id = 1, Server = "10.0.0.12:7990", Active = 2 },
    };

    public sealed class Peer
    {
        public int Id;
        public string Server = "";
        public bool Drain;
        public bool Down;
        public int Active;
    }

    public NginxPlusStub()
    {
        Server = WireMockServer.Start();
        Server.Given(Request.Create().WithPath(new WildcardMatcher("/api*")).UsingAnyMethod()).RespondWith(Response.Create().WithCallback(req =>
        {
            if (BasicAuth is string expected && Stub.Header(req, "Authorization") != "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(expected)))
                return Stub.Json(401, """{"error":{"status":401,"text":"unauthorized","code":"Unauthorized"}}""", ("WWW-Authenticate", "Basic realm=\"api\""));
            lock (_gate) return Handle(req.Method, req.Path, req.Body);
        }));
    }

    public WireMockServer Server { get; }
    public string ApiBase => Server.Url + "/api";
    public bool ReadOnly { get; set; }
    /// <summary>"user:password" the API requires as HTTP Basic (auth_basic in front of the api location); null = open.</summary>
    public string? BasicAuth { get; set; }
    public int[] Versions { get; set; } = Enumerable.Range(1, 9).ToArray();
    public List<string> Patches { get; } = new();
    public Peer this[int id] { get { lock (_gate) return _peers[id]; } }

    private WireMock.ResponseMessage Handle(string method, string path, string? body)
    {
        if (path is "/api/" or "/api") return Stub.Json(200, JsonSerializer.Serialize(Versions));
        var parts = path.Trim('/').Split('/'); // api 9 http upstreams {u} [servers {id}]
        if (parts.Length < 5 || parts[1] != "9" || parts[2] != "http" || parts[3] != "upstreams")
            return Error(404, "PathNotFound", "path not found");
        if (parts[4] != "bitbucket") return Error(404, "UpstreamNotFound", $"upstream not found");
        if (parts.Length == 5 && method == "GET")
        {
            var peers = new JsonArray(_peers.Select(p => (JsonNode)new JsonObject
            {
                ["id"] = p.Id, ["server"] = p.Server, ["name"] = p.Server, ["backup"] = false, ["weight"] = 1,
                ["state"] = p.Down ? "down" : p.Drain ? "draining" : "up", ["active"] = p.Active, ["requests"] = 100,
            }).ToArray());
            foreach (var p in _peers.Where(p => (p.Drain || p.Down) && p.Active > 0)) p.Active--;
            return Stub.Json(200, new JsonObject { ["peers"] = peers, ["keepalive"] = 0, ["zombies"] = 0, ["zone"] = "bitbucket" }.ToJsonString());
        }
        if (parts.Length == 7 && parts[5] == "servers" && method == "PATCH")
        {
            if (ReadOnly) return Error(405, "MethodDisabled", "method disabled");
            var peer = _peers.FirstOrDefault(p => p.Id.ToString() == parts[6]);
            if (peer is null) return Error(404, "UpstreamServerNotFound", $"server with ID \"{parts[6]}\" does not exist");
            Patches.Add($"{parts[6]} {body}");
            var change = JsonNode.Parse(body ?? "{}")!.AsObject();
            if (change["drain"] is JsonNode d) peer.Drain = d.GetValue<bool>();
            if (change["down"] is JsonNode dn) peer.Down = dn.GetValue<bool>();
            return Stub.Json(200, new JsonObject { ["id"] = peer.Id, ["server"] = peer.Server, ["weight"] = 1, ["max_conns"] = 0, ["max_fails"] = 1,
                ["fail_timeout"] = "10s", ["slow_start"] = "0s", ["route"] = "", ["backup"] = false, ["down"] = peer.Down, ["drain"] = peer.Drain }.ToJsonString());
        }
        return Error(405, "MethodNotSupported", "method not supported");
    }

    private static WireMock.ResponseMessage Error(int status, string code, string text) =>
        Stub.Json(status, new JsonObject
        {
            ["error"] = new JsonObject { ["status"] = status, ["text"] = text, ["code"] = code },
            ["request_id"] = Guid.NewGuid().ToString("N"), ["href"] = "https://nginx.org/en/docs/http/ngx_http_api_module.html",
        }.ToJsonString());

    public void Dispose() => Server.Stop();
}
