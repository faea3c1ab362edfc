using System.Net;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>
/// The traffic side of a load balancer that is only a stub: a loopback HTTP front that sends each request to the
/// backend <c>choose</c> picks from the stub's member states (null: no member may take it, 503), and tells
/// <c>done</c> when that request has finished, so a stub can count requests in flight as its connections.
/// </summary>
public sealed class StubDataPlane : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public StubDataPlane(Func<Backend?> choose, Action<Backend>? done = null)
    {
        Port = FreePort.Next();
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = new[] { $"http://127.0.0.1:{Port}" } });
        Server.Given(Request.Create().WithPath("/*").UsingGet()).RespondWith(Response.Create().WithCallback(req =>
        {
            if (choose() is not Backend backend) return Stub.Json(503, "{\"error\":\"no member in rotation\"}");
            try
            {
                using var response = _http.GetAsync(new Uri(new Uri($"http://{backend.Address}"), req.Path)).GetAwaiter().GetResult();
                return new WireMock.ResponseMessage
                {
                    StatusCode = (int)response.StatusCode,
                    BodyData = new WireMock.Util.BodyData { BodyAsString = response.Content.ReadAsStringAsync().GetAwaiter().GetResult(), DetectedBodyType = WireMock.Types.BodyType.String },
                };
            }
            catch (HttpRequestException ex)
            {
                return Stub.Json((int)HttpStatusCode.BadGateway, "{\"error\":\"" + ex.Message.Replace("\"", "'") + "\"}");
            }
            finally
            {
                done?.Invoke(backend);
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
