using System.Collections;
using System.Security.Cryptography.X509Certificates;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.TestSupport;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>
/// Issue 12 problems 1, 2 and 7: the one /status probe, under the node's context path, with the connection's TLS trust;
/// and the node host (the health gate's /status check) built on it.
/// </summary>
public sealed class NodeStatusProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-status-").FullName;
    private readonly List<WireMockServer> _servers = new();

    private WireMockServer Http()
    {
        var server = WireMockServer.Start();
        _servers.Add(server);
        return server;
    }

    private (WireMockServer Server, string CaPath) Https()
    {
        using var ca = TestCertificates.NewCa("Internal Test CA " + Guid.NewGuid().ToString("N")[..6]);
        var leaf = TestCertificates.NewServer(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29));
        var server = WireMockServer.Start(new WireMockServerSettings
        {
            Port = FreePort.Next(),
            UseSSL = true,
            HostingScheme = HostingScheme.Https,
            CertificateSettings = new WireMockCertificateSettings { X509Certificate = leaf },
        });
        _servers.Add(server);
        var caPath = Path.Combine(_dir, "ca.pem");
        File.WriteAllText(caPath, X509CertificateLoader.LoadCertificate(ca.Export(X509ContentType.Cert)).ExportCertificatePem());
        return (server, caPath);
    }

    private static IResponseBuilder Status(string state, int code) => Reply($$"""{"state":"{{state}}"}""", code);

    [Theory]
    [InlineData("http://node1:7990/bitbucket", "http://node1:7990/bitbucket/status")]
    [InlineData("http://node1:7990/bitbucket/", "http://node1:7990/bitbucket/status")]
    [InlineData("http://node1:7990", "http://node1:7990/status")]
    [InlineData("https://node1/a/b", "https://node1/a/b/status")]
    public void Node_urls_keep_the_context_path_written_without_a_trailing_slash(string nodeUrl, string status)
    {
        Assert.Equal(status, NodeUrls.Status(new Uri(nodeUrl)).AbsoluteUri);
        Assert.Equal("http://h:7991/bitbucket/", NodeUrls.FromParts("h", 7991, "/bitbucket").AbsoluteUri);
        Assert.Equal("http://h:7990/", NodeUrls.FromParts("h", 7990, null).AbsoluteUri);
    }

    [Fact]
    public async Task The_probe_reads_status_under_the_context_path_and_knows_the_documented_states()
    {
        var server = Http();
        using var probe = new NodeStatusProbe(new Uri(server.Url + "/bitbucket"));
        Assert.EndsWith("/bitbucket/status", probe.StatusUri.AbsolutePath);

        server.Answer("GET", "/bitbucket/status", Status("RUNNING", 200));
        Assert.True((await probe.ReadAsync(CancellationToken.None)).IsRunning);

        server.Reset();
        server.Answer("GET", "/bitbucket/status", Status("STARTING", 503));
        var starting = await probe.ReadAsync(CancellationToken.None);
        Assert.False(starting.IsRunning);
        Assert.Null(probe.Hopeless(starting, "node-1"));

        server.Reset();
        server.Answer("GET", "/bitbucket/status", Status("MAINTENANCE", 200));
        var maintenance = await probe.ReadAsync(CancellationToken.None);
        Assert.False(maintenance.IsRunning);
        Assert.Null(probe.Hopeless(maintenance, "node-1"));
        Assert.Contains("MAINTENANCE", maintenance.ToString());

        server.Reset();
        server.Answer("GET", "/bitbucket/status", Status("FIRST_RUN", 200));
        var firstRun = await probe.ReadAsync(CancellationToken.None);
        Assert.False(firstRun.IsRunning);
        Assert.Equal("NodeStatusFirstRun", probe.Hopeless(firstRun, "node-1")!.ErrorId);

        server.Reset();
        server.Answer("GET", "/bitbucket/status", Status("ERROR", 500));
        Assert.Equal("NodeStatusError", probe.Hopeless(await probe.ReadAsync(CancellationToken.None), "node-1")!.ErrorId);

        server.Reset();
        server.Answer("GET", "/bitbucket/status", Reply("<html>not here</html>", 404));
        var notFound = await probe.ReadAsync(CancellationToken.None);
        Assert.False(notFound.IsRunning);
        Assert.Contains("context path", notFound.ToString());
    }

    [Fact]
    public async Task An_answer_over_the_probes_size_cap_is_not_read_but_its_status_is_kept()
    {
        var server = Http();
        using var probe = new NodeStatusProbe(new Uri(server.Url!));
        server.Answer("GET", "/status", Reply($$"""{"state":"RUNNING","pad":"{{new string('x', 70 * 1024)}}"}""", 200));

        var status = await probe.ReadAsync(CancellationToken.None);

        Assert.Equal(200, status.HttpStatus);
        Assert.Null(status.State);
        Assert.False(status.IsRunning);
    }

    [Fact]
    public async Task The_probe_trusts_the_connections_internal_CA_and_says_why_it_refuses_without_it()
    {
        var (server, caPath) = Https();
        server.Answer("GET", "/bitbucket/status", Status("RUNNING", 200));
        var url = new Uri($"https://localhost:{server.Ports[0]}/bitbucket");

        using (var untrusted = new NodeStatusProbe(url))
        {
            var refused = await untrusted.ReadAsync(CancellationToken.None);
            Assert.False(refused.IsRunning);
            Assert.True(refused.CertificateUntrusted);
            Assert.Equal("NodeStatusCertificateUntrusted", untrusted.Hopeless(refused, "node-1")!.ErrorId);
            Assert.Contains("TrustedCertificatePath", refused.ToString());
        }
        using (var trusted = new NodeStatusProbe(url, new ZduTransport { TrustedCertificatePath = caPath }))
            Assert.True((await trusted.ReadAsync(CancellationToken.None)).IsRunning);
        using (var skipping = new NodeStatusProbe(url, new ZduTransport { SkipCertificateCheck = true }))
            Assert.True((await skipping.ReadAsync(CancellationToken.None)).IsRunning);
    }

    [Fact]
    public async Task The_node_host_polls_status_under_the_nodes_context_path_with_the_connections_CA()
    {
        // Before issue 12: new Uri("https://node:port/bitbucket", "status") polled /status (404) with default trust.
        var (server, caPath) = Https();
        server.Answer("GET", "/bitbucket/status", Status("RUNNING", 200));
        server.Answer("GET", "/status", Reply("<html>404</html>", 404));
        var profile = Profile($"https://localhost:{server.Ports[0]}/bitbucket");
        using var host = new NodeStepsHost(profile, (_, _) => throw new InvalidOperationException("no shell needed"),
            transport: new ZduTransport { TrustedCertificatePath = caPath });

        await host.WaitStatusRunningAsync(profile.Nodes[0], TimeSpan.FromSeconds(20), CancellationToken.None);

        Assert.Equal(0, server.Count("GET", "/status"));
    }

    [Fact]
    public async Task The_node_host_fails_fast_when_status_says_ERROR()
    {
        var server = Http();
        server.Answer("GET", "/bitbucket/status", Status("ERROR", 500));
        var profile = Profile(server.Url + "/bitbucket");
        using var host = new NodeStepsHost(profile, (_, _) => throw new InvalidOperationException("no shell needed"));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<BbException>(() => host.WaitStatusRunningAsync(profile.Nodes[0], TimeSpan.FromMinutes(5), CancellationToken.None));

        Assert.Equal("NodeStatusError", ex.ErrorId);
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"took {clock.Elapsed}");
    }

    private ClusterProfile Profile(string nodeUrl)
    {
        var archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.tar.gz");
        File.WriteAllText(archive, "x");
        return ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = PreflightCheck.Sha256Of(archive) },
            ["LoadBalancers"] = new object[] { new Hashtable { ["Name"] = "lb", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9999" } } },
            ["Nodes"] = new object[]
            {
                new Hashtable { ["Name"] = "node-1", ["Url"] = nodeUrl, ["Remoting"] = "local", ["InstallRoot"] = "/opt/atlassian/bitbucket", ["Service"] = "Script", ["Member"] = "bitbucket/node-1" },
                new Hashtable { ["Name"] = "node-2", ["Url"] = "http://127.0.0.1:1/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/atlassian/bitbucket", ["Service"] = "Script", ["Member"] = "bitbucket/node-2" },
            },
            ["Timeouts"] = new Hashtable { ["FirstPollMilliseconds"] = 50, ["MaxPollMilliseconds"] = 200 },
        }, null);
    }

    public void Dispose()
    {
        foreach (var s in _servers) s.Stop();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
