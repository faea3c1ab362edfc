using System.Net;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>
/// The traffic side of a load balancer that is only a stub: a loopback HTTP front that sends each request to the
/// backend (host:port) <c>choose</c> picks from the stub's member states (null: no member may take it, 503), and
/// tells <c>done</c> when that request has finished, so a stub can count requests in flight as its connections.
/// </summary>
public sealed class StubDataPlane : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public StubDataPlane(Func<string?> choose, Action<string>? done = null)
    {
        Port = FreePort.Next();
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = new[] { $"http://127.0.0.1:{Port}" } });
        Server.Given(Request.Create().WithPath("/*").UsingAnyMethod()).RespondWith(Response.Create().WithCallback(req =>
        {
            if (choose() is not string backend) return Stub.Json(503, "{\"error\":\"no member in rotation\"}");
            try
            {
                // A reverse proxy: method, path and query, headers (the API's Authorization among them) and body go through.
                using var forward = new HttpRequestMessage(new HttpMethod(req.Method), new Uri(new Uri($"http://{backend}"), new Uri(req.Url).PathAndQuery));
                if (req.BodyAsBytes is { Length: > 0 } bytes) forward.Content = new ByteArrayContent(bytes);
                foreach (var h in req.Headers ?? new Dictionary<string, WireMock.Types.WireMockList<string>>())
                {
                    if (h.Key.Equals("Host", StringComparison.OrdinalIgnoreCase) || h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) continue;
                    if (!forward.Headers.TryAddWithoutValidation(h.Key, h.Value.ToArray())) forward.Content?.Headers.TryAddWithoutValidation(h.Key, h.Value.ToArray());
                }
                using var response = _http.Send(forward);
                // The backend's headers go back too (the simulated nodes name themselves in X-Bbsim-Node).
                var headers = response.Headers.Concat(response.Content.Headers)
                    .ToDictionary(h => h.Key, h => new WireMock.Types.WireMockList<string>(h.Value.ToArray()), StringComparer.OrdinalIgnoreCase);
                headers.Remove("Content-Length");
                headers.Remove("Transfer-Encoding");
                return new WireMock.ResponseMessage
                {
                    StatusCode = (int)response.StatusCode,
                    Headers = headers,
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
