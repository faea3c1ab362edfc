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
    private readonly HttpClient _http;

    /// <param name="certificate">Serve HTTPS on the front with this certificate (with its key); null = plain HTTP.</param>
    public StubDataPlane(Func<string?> choose, Action<string>? done = null, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        // HTTPS to the backends is verified against BackendCa (the nodes' internal CA) when one is set.
        _http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, errors) => errors == System.Net.Security.SslPolicyErrors.None
                || errors == System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors && BackendCa is { } ca && TrustedBy(ca, cert) },
        }) { Timeout = TimeSpan.FromSeconds(20) };
        Port = FreePort.Next();
        Server = WireMockServer.Start(certificate is null
            ? new WireMockServerSettings { Urls = new[] { $"http://127.0.0.1:{Port}" } }
            : new WireMockServerSettings
            {
                Port = Port, UseSSL = true, HostingScheme = WireMock.Types.HostingScheme.Https,
                CertificateSettings = new WireMockCertificateSettings { X509Certificate = certificate },
            });
        Scheme = certificate is null ? "http" : "https";
        Server.Given(Request.Create().WithPath("/*").UsingAnyMethod()).RespondWith(Response.Create().WithCallback(req =>
        {
            if (choose() is not string backend) return Stub.Json(503, "{\"error\":\"no member in rotation\"}");
            try
            {
                // A reverse proxy: method, path and query, headers (the API's Authorization among them) and body go through.
                using var forward = new HttpRequestMessage(new HttpMethod(req.Method), new Uri(new Uri($"{BackendScheme}://{backend}"), new Uri(req.Url).PathAndQuery));
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
    private string Scheme { get; }
    public Uri Frontend => new($"{Scheme}://127.0.0.1:{Port}/");
    /// <summary>"https" when the backends (the nodes) serve HTTPS; "http" by default.</summary>
    public string BackendScheme { get; set; } = "http";
    /// <summary>The CA that signed the backends' certificates (an internal CA), trusted besides the system's.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? BackendCa { get; set; }

    private static bool TrustedBy(System.Security.Cryptography.X509Certificates.X509Certificate2 ca, System.Security.Cryptography.X509Certificates.X509Certificate? cert)
    {
        if (cert is null) return false;
        using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
        chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
        using var leaf = new System.Security.Cryptography.X509Certificates.X509Certificate2(cert);
        return chain.Build(leaf);
    }

    public void Dispose()
    {
        Server.Stop();
        _http.Dispose();
    }
}
