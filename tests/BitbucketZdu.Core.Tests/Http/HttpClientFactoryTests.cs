using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using BitbucketZdu.Core.Http;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;

namespace BitbucketZdu.Core.Tests.Http;

/// <summary>One test per policy of the one HTTP client factory: trust, redirects, size cap, logging.</summary>
public sealed class HttpClientFactoryTests : IDisposable
{
    private readonly List<WireMockServer> _servers = new();

    public void Dispose()
    {
        foreach (var s in _servers) s.Stop();
    }

    private WireMockServer Http()
    {
        var server = WireMockServer.Start(new WireMockServerSettings { Port = Simulator.Launcher.FreePort.Next() });
        _servers.Add(server);
        return server;
    }

    private WireMockServer Https(X509Certificate2 certificate)
    {
        var server = WireMockServer.Start(new WireMockServerSettings
        {
            Port = Simulator.Launcher.FreePort.Next(),
            UseSSL = true,
            HostingScheme = HostingScheme.Https,
            CertificateSettings = new WireMockCertificateSettings { X509Certificate = certificate },
        });
        _servers.Add(server);
        server.Given(Request.Create().WithPath("/ok").UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithBody("ok"));
        return server;
    }

    private static (X509Certificate2 Ca, X509Certificate2 Leaf) NewCaAndLeaf(string caName)
    {
        using var ca = TestCertificates.NewCa(caName);
        var leaf = TestCertificates.NewServer(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29));
        return (X509CertificateLoader.LoadCertificate(ca.Export(X509ContentType.Cert)), leaf);
    }

    private static HttpPolicy Policy() => new() { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Tls_is_verified_by_default_and_a_given_CA_is_trusted()
    {
        var (ca, leaf) = NewCaAndLeaf("Factory Test CA");
        var url = $"https://localhost:{Https(leaf).Ports[0]}/ok";

        using (var strict = HttpClientFactory.Create(Policy(), out var trust))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => strict.GetAsync(url));
            Assert.Contains("chain", trust.LastFailure);
        }

        var withCa = Policy();
        withCa.TrustedCertificates = new[] { ca };
        using var trusting = HttpClientFactory.Create(withCa);
        Assert.Equal(HttpStatusCode.OK, (await trusting.GetAsync(url)).StatusCode);
    }

    [Fact]
    public async Task Only_the_given_CA_refuses_a_certificate_of_another_CA()
    {
        var (ca, _) = NewCaAndLeaf("Expected CA");
        var (_, otherLeaf) = NewCaAndLeaf("Other CA");
        var url = $"https://localhost:{Https(otherLeaf).Ports[0]}/ok";
        var policy = Policy();
        policy.TrustedCertificates = new[] { ca };
        policy.OnlyTrustedCertificates = true;
        using var client = HttpClientFactory.Create(policy, out var trust);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(url));
        Assert.Contains("not in the trusted certificate file", trust.LastFailure);
    }

    [Fact]
    public async Task SkipCertificateCheck_accepts_any_certificate()
    {
        var (_, leaf) = NewCaAndLeaf("Untrusted CA");
        var url = $"https://localhost:{Https(leaf).Ports[0]}/ok";
        var lines = new List<string>();
        var policy = Policy();
        policy.SkipCertificateCheck = true;
        policy.Diagnostics = lines.Add;
        using var client = HttpClientFactory.Create(policy);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(url)).StatusCode);
        Assert.Contains(lines, l => l.Contains("certificate verification is OFF"));
    }

    [Fact]
    public async Task Redirects_are_not_followed_unless_asked()
    {
        var server = Http();
        server.Given(Request.Create().WithPath("/from").UsingGet())
            .RespondWith(Response.Create().WithStatusCode(302).WithHeader("Location", "/to"));
        server.Given(Request.Create().WithPath("/to").UsingGet()).RespondWith(Response.Create().WithStatusCode(200));
        var url = $"{server.Urls[0]}/from";

        using (var noFollow = HttpClientFactory.Create(Policy()))
            Assert.Equal(HttpStatusCode.Redirect, (await noFollow.GetAsync(url)).StatusCode);

        var follow = Policy();
        follow.FollowRedirects = true;
        using var following = HttpClientFactory.Create(follow);
        Assert.Equal(HttpStatusCode.OK, (await following.GetAsync(url)).StatusCode);
    }

    [Fact]
    public async Task A_body_over_the_size_cap_is_refused_with_its_status()
    {
        var server = Http();
        server.Given(Request.Create().WithPath("/big").UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithBody(new string('x', 4096)));
        server.Given(Request.Create().WithPath("/small").UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithBody("small"));
        var policy = Policy();
        policy.MaxResponseBytes = 1024;
        using var client = HttpClientFactory.Create(policy);

        var ex = await Assert.ThrowsAsync<HttpResponseTooLargeException>(() =>
            client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"{server.Urls[0]}/big"), HttpCompletionOption.ResponseHeadersRead));
        Assert.Equal(200, ex.StatusCode);
        Assert.Equal("small", await client.GetStringAsync($"{server.Urls[0]}/small"));
    }

    [Fact]
    public async Task A_body_of_unknown_length_is_capped_while_read()
    {
        var policy = Policy();
        policy.MaxResponseBytes = 1024;
        using var client = HttpClientFactory.Create(policy, new StubHandler(() => new UnknownLengthContent(new byte[4096])));

        var ex = await Assert.ThrowsAsync<HttpResponseTooLargeException>(() =>
            client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://example.invalid/"), HttpCompletionOption.ResponseHeadersRead));
        Assert.Equal(503, ex.StatusCode);
    }

    private sealed class StubHandler(Func<HttpContent> content) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { Content = content() });
    }

    /// <summary>A body without Content-Length (as chunked ones are).</summary>
    private sealed class UnknownLengthContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes, 0, bytes.Length);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task The_logging_handler_feeds_the_sink_without_secrets()
    {
        var server = Http();
        server.Given(Request.Create().WithPath("/blob").UsingGet()).RespondWith(Response.Create().WithStatusCode(200));
        var lines = new List<string>();
        var policy = Policy();
        policy.Name = "journal";
        policy.Diagnostics = lines.Add;
        using var client = HttpClientFactory.Create(policy);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{server.Urls[0].Replace("http://", "http://user:" + Canary.Password + "@")}/blob?sig={Canary.Token}&nonce=n1");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Canary.Token);

        await client.SendAsync(request);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync($"http://127.0.0.1:{Simulator.Launcher.FreePort.Next()}/x?sig={Canary.Token}"));

        Assert.Equal(2, lines.Count);
        Assert.StartsWith($"journal: GET {server.Urls[0]}/blob -> 200 in ", lines[0]);
        Assert.Contains("failed (HttpRequestException)", lines[1]);
        foreach (var line in lines) Canary.AssertAbsent(line, "log line");
        Assert.DoesNotContain("nonce", string.Join("\n", lines));
    }
}
