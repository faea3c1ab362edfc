using System.Net;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace BitbucketZdu.LoadBalancers.Tests.F5BigIp;

/// <summary>
/// The traffic side of <see cref="F5Stub"/>: a virtual server that load-balances each request (an HTTP profile with
/// OneConnect, as F5 advises for HTTP pools) round-robin over the pool members the stub has enabled and up, and counts
/// each request in flight as the member's serverside.curConns, which the stub's stats then report. A member that is
/// user-disabled or user-down gets no new requests; the ones it has finish.
/// </summary>
public sealed class F5DataPlane : IDisposable
{
    private readonly F5Stub _stub;
    private readonly Dictionary<string, Backend> _backends;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private int _next;

    public F5DataPlane(F5Stub stub, params Backend[] backends)
    {
        _stub = stub;
        _backends = backends.ToDictionary(b => b.Address);
        lock (stub.Gate)
        {
            stub.LiveConnections = true;
            stub.Members.Clear();
            foreach (var b in backends) stub.Members.Add(new F5Stub.Member { Name = b.Address, Address = "127.0.0.1" });
        }
        Port = FreePort.Next();
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = new[] { $"http://127.0.0.1:{Port}" } });
        Server.Given(Request.Create().WithPath("/*").UsingGet()).RespondWith(Response.Create().WithCallback(req =>
        {
            F5Stub.Member member;
            lock (stub.Gate)
            {
                var eligible = stub.Members.Where(m => m.Session != "user-disabled" && m.State == "up").ToList();
                if (eligible.Count == 0) return Stub.Json(503, "{\"error\":\"no pool member available\"}");
                member = eligible[_next++ % eligible.Count];
                member.CurConns++;
            }
            try
            {
                using var response = _http.GetAsync(new Uri(new Uri($"http://{member.Name}"), req.Path)).GetAwaiter().GetResult();
                var body = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                return new WireMock.ResponseMessage
                {
                    StatusCode = (int)response.StatusCode,
                    BodyData = new WireMock.Util.BodyData { BodyAsString = body, DetectedBodyType = WireMock.Types.BodyType.String },
                };
            }
            catch (HttpRequestException ex)
            {
                return Stub.Json((int)HttpStatusCode.BadGateway, "{\"error\":\"" + ex.Message.Replace("\"", "'") + "\"}");
            }
            finally
            {
                lock (stub.Gate) member.CurConns--;
            }
        }));
    }

    public int Port { get; }
    public WireMockServer Server { get; }
    public Uri Frontend => new($"http://127.0.0.1:{Port}/");

    public void Dispose()
    {
        Server.Stop();
        _http.Dispose();
    }
}
