using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using BitbucketZdu.TestSupport;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>
/// TLS as users meet it through Connect-BbCluster: verification is on by default; a self-signed and an expired
/// certificate are refused before any request reaches the server; the issuing CA given with -TrustedCertificatePath
/// is accepted; -SkipCertificateCheck warns on every call that uses it.
/// </summary>
public sealed class TlsCmdletTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-tlsc-").FullName;
    private readonly List<WireMockServer> _servers = new();
    private readonly PowerShellHost _ps = new();
    private readonly X509Certificate2 _ca = TestCertificates.NewCa("BitbucketZdu Cmdlet Test CA");

    private WireMockServer Https(X509Certificate2 certificate)
    {
        var server = WireMockServer.Start(new WireMockServerSettings
        {
            Port = FreePort.Next(),
            UseSSL = true,
            HostingScheme = HostingScheme.Https,
            CertificateSettings = new WireMockCertificateSettings { X509Certificate = certificate },
        });
        _servers.Add(server);
        server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        return server;
    }

    private PowerShellHost.Result Connect(WireMockServer server, string extra = "")
    {
        var r = _ps.Run($"Connect-BbCluster -Uri \"https://localhost:{server.Ports[0]}\" -Credential $cred -TimeoutSec 10 {extra} -PassThru", new Dictionary<string, object?>
        {
            ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
            ["ca"] = Path.Combine(_dir, "ca.pem"),
        });
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
        return r;
    }

    private X509Certificate2 Valid => TestCertificates.NewServer(_ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10));
    private X509Certificate2 Expired => TestCertificates.NewServer(_ca, DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-2));

    private static void AssertRefused(PowerShellHost.Result r, WireMockServer server, string? because = null)
    {
        var error = r.FirstError;
        Assert.NotNull(error);
        Assert.Equal("ZduCertificateUntrusted,BitbucketZdu.Cmdlets.ConnectBbClusterCommand", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
        Assert.Contains("-TrustedCertificatePath", error.Exception.Message);
        if (because is not null) Assert.Contains(because, error.Exception.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(r.Output);
        Assert.Empty(server.LogEntries); // the request (and its credentials) never reached the server
    }

    [Fact]
    public void A_self_signed_certificate_is_refused_by_default()
    {
        var server = Https(TestCertificates.NewServer(null, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10)));
        AssertRefused(Connect(server), server, "not trusted");
    }

    [Fact]
    public void A_certificate_of_an_unknown_CA_is_refused_by_default()
    {
        var server = Https(Valid);
        AssertRefused(Connect(server), server);
    }

    [Fact]
    public void An_expired_certificate_is_refused_even_when_its_CA_is_trusted()
    {
        TestCertificates.WritePem(_ca, Path.Combine(_dir, "ca.pem"));
        var server = Https(Expired);
        var r = Connect(server, "-TrustedCertificatePath $ca");
        AssertRefused(r, server, "not valid");
        Assert.Contains("expired", r.FirstError!.Exception.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void An_expired_self_signed_certificate_is_refused()
    {
        var server = Https(TestCertificates.NewServer(null, DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-2)));
        AssertRefused(Connect(server), server);
    }

    [Fact]
    public void The_issuing_CA_given_with_TrustedCertificatePath_is_accepted_without_a_warning()
    {
        TestCertificates.WritePem(_ca, Path.Combine(_dir, "ca.pem"));
        var server = Https(Valid);
        var r = Connect(server, "-TrustedCertificatePath $ca");
        Assert.Null(r.FirstError);
        Assert.Single(r.Output);
        Assert.Empty(r.Warnings);
        Assert.Single(server.LogEntries);
    }

    [Fact]
    public void SkipCertificateCheck_connects_and_warns_on_every_call()
    {
        var server = Https(TestCertificates.NewServer(null, DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-2)));
        for (var call = 1; call <= 3; call++)
        {
            var r = Connect(server, "-SkipCertificateCheck");
            Assert.Null(r.FirstError);
            var warning = Assert.Single(r.Warnings);
            Assert.Contains("verification is OFF", warning);
            Assert.Equal(call, server.LogEntries.Count());
        }
        // Without the switch on the next call, verification is back on: the choice is per call, never sticky.
        AssertRefusedAfter(Connect(server), 3, server);
    }

    private static void AssertRefusedAfter(PowerShellHost.Result r, int requestsBefore, WireMockServer server)
    {
        Assert.Equal("ZduCertificateUntrusted,BitbucketZdu.Cmdlets.ConnectBbClusterCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Empty(r.Warnings);
        Assert.Equal(requestsBefore, server.LogEntries.Count());
    }

    [Fact]
    public void SkipCertificateCheck_on_a_load_balancer_warns_on_every_call()
    {
        for (var call = 0; call < 2; call++)
        {
            var r = _ps.Run("New-BbLoadBalancer -Kind NginxPlus -Endpoint https://127.0.0.1:1/api -Backend bitbucket -SkipCertificateCheck");
            Assert.Null(r.FirstError);
            Assert.Contains("verification is OFF", Assert.Single(r.Warnings));
        }
        Assert.Empty(_ps.Run("New-BbLoadBalancer -Kind NginxPlus -Endpoint https://127.0.0.1:1/api -Backend bitbucket").Warnings);
    }

    public void Dispose()
    {
        _ps.Dispose();
        foreach (var s in _servers) s.Stop();
        Directory.Delete(_dir, recursive: true);
    }
}
