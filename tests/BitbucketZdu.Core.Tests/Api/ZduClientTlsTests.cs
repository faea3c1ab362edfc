using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BitbucketZdu.Core.Api;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>HTTPS endpoints with certificates no machine trusts: refused by default, accepted when told.</summary>
public sealed class ZduClientTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-tls-").FullName;
    private readonly List<WireMockServer> _servers = new();

    /// <summary>An HTTPS WireMock with <paramref name="certificate"/> (default: one signed by a CA nobody trusts).</summary>
    private WireMockServer Https(X509Certificate2? certificate = null)
    {
        certificate ??= NewCaAndLeaf("Untrusted Test CA").Leaf;
        var settings = new WireMockServerSettings
        {
            Port = FreePortNext(),
            UseSSL = true,
            HostingScheme = HostingScheme.Https,
            CertificateSettings = new WireMockCertificateSettings { X509Certificate = certificate },
        };
        var server = WireMockServer.Start(settings);
        _servers.Add(server);
        server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        return server;
    }

    private static int FreePortNext() => Simulator.Launcher.FreePort.Next();

    private static string HttpsUrl(WireMockServer server) => $"https://localhost:{server.Ports[0]}";

    /// <summary>A CA and a server certificate for localhost/127.0.0.1 signed by it.</summary>
    private static (X509Certificate2 Ca, X509Certificate2 Leaf) NewCaAndLeaf(string caName)
    {
        using var ca = TestSupport.TestCertificates.NewCa(caName);
        var leaf = TestSupport.TestCertificates.NewServer(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29));
        return (X509CertificateLoader.LoadCertificate(ca.Export(X509ContentType.Cert)), leaf);
    }

    private string WritePem(X509Certificate2 cert, string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, cert.ExportCertificatePem());
        return path;
    }

    [Fact]
    public async Task A_self_signed_endpoint_is_refused_by_default_with_what_to_do()
    {
        var server = Https();
        using var client = new ZduClient(Options(HttpsUrl(server)));

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduCertificateUntrusted", ex.ErrorId);
        Assert.Equal(BbErrorCategory.SecurityError, ex.Category);
        Assert.Contains("-TrustedCertificatePath", ex.Message);
        Assert.Contains("-SkipCertificateCheck", ex.Message);
        Assert.Empty(server.LogEntries);
    }

    [Fact]
    public async Task SkipCertificateCheck_accepts_it()
    {
        var server = Https();
        var options = Options(HttpsUrl(server));
        options.SkipCertificateCheck = true;
        using var client = new ZduClient(options);

        var cluster = await client.GetClusterAsync();

        Assert.Equal(ClusterState.STABLE, cluster.State);
    }

    [Fact]
    public async Task A_trusted_CA_file_accepts_a_server_certificate_it_signed()
    {
        var (ca, leaf) = NewCaAndLeaf("BitbucketZdu Test CA");
        var server = Https(leaf);
        var options = Options(HttpsUrl(server));
        options.TrustedCertificatePath = WritePem(ca, "ca.pem");
        using var client = new ZduClient(options);

        var cluster = await client.GetClusterAsync();

        Assert.Equal(ClusterState.STABLE, cluster.State);
    }

    [Fact]
    public async Task A_trusted_CA_file_of_another_CA_is_still_refused()
    {
        var (_, leaf) = NewCaAndLeaf("BitbucketZdu Test CA");
        var (otherCa, _) = NewCaAndLeaf("Some Other CA");
        var server = Https(leaf);
        var options = Options(HttpsUrl(server));
        options.TrustedCertificatePath = WritePem(otherCa, "other.pem");
        options.MaxRetries = 0;
        using var client = new ZduClient(options);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduCertificateUntrusted", ex.ErrorId);
        Assert.Empty(server.LogEntries);
    }

    [Fact]
    public void A_missing_or_bad_certificate_file_is_an_argument_error()
    {
        var options = Options("https://localhost:1");
        options.TrustedCertificatePath = Path.Combine(_dir, "missing.pem");
        Assert.Contains("does not exist", Assert.Throws<ArgumentException>(() => new ZduClient(options)).Message);

        var garbage = Path.Combine(_dir, "garbage.pem");
        File.WriteAllText(garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        options.TrustedCertificatePath = garbage;
        Assert.Contains("not a certificate file", Assert.Throws<ArgumentException>(() => new ZduClient(options)).Message);
    }

    public void Dispose()
    {
        foreach (var s in _servers) s.Stop();
        Directory.Delete(_dir, recursive: true);
    }
}
