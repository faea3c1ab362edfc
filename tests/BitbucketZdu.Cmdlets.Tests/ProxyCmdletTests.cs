using System.Management.Automation;
using System.Text;
using BitbucketZdu.TestSupport;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>
/// An HTTP proxy between the admin's machine and Bitbucket (issue 12 problem 10): Connect-BbCluster -Proxy sends every
/// request through it; a 407 is explained (not a generic error); -ProxyCredential answers the proxy's challenge.
/// The stub plays the proxy: it receives the absolute-form request for the Bitbucket URL and answers as Bitbucket once
/// the proxy credential is there.
/// </summary>
public sealed class ProxyCmdletTests : IDisposable
{
    private const string ProxyUser = "proxy-user";
    private const string ProxyPassword = "proxy-pass-Zk3";
    private readonly WireMockServer _proxy = WireMockServer.Start(FreePort.Next());
    private readonly PowerShellHost _ps = new();

    public ProxyCmdletTests()
    {
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(ProxyUser + ":" + ProxyPassword));
        _proxy.Given(Request.Create().WithPath("/rest/zdu/cluster").UsingGet().WithHeader("Proxy-Authorization", expected, MatchBehaviour.AcceptOnMatch))
            .AtPriority(1).RespondWith(Reply(Stable));
        _proxy.Given(Request.Create().UsingAnyMethod()).AtPriority(10)
            .RespondWith(Response.Create().WithStatusCode(407).WithHeader("Proxy-Authenticate", "Basic realm=\"corp\"").WithBody("proxy auth required"));
    }

    public void Dispose()
    {
        _proxy.Stop();
        _ps.Dispose();
    }

    // A Bitbucket host only the proxy can reach (never resolved here: the client hands the whole URL to the proxy).
    private PowerShellHost.Result Connect(string extra) =>
        _ps.Run($"Connect-BbCluster -Uri http://bitbucket.example.invalid:7990 -Credential $cred -Proxy http://127.0.0.1:{_proxy.Ports[0]} -TimeoutSec 10 {extra} -PassThru",
            new Dictionary<string, object?>
            {
                ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
                ["proxyCred"] = new PSCredential(ProxyUser, Canary.Secure(ProxyPassword)),
            });

    [Fact]
    public void A_proxy_that_answers_407_is_explained_with_the_next_step()
    {
        var r = Connect("");
        var error = r.FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("ZduProxyAuthenticationRequired,", error!.FullyQualifiedErrorId);
        Assert.Contains("407", error.Exception.Message);
        Assert.Contains("-ProxyCredential", error.Exception.Message);
        Assert.Empty(r.Output);
        // The request went to the proxy, for the Bitbucket URL.
        Assert.Contains(_proxy.LogEntries, e => e.RequestMessage!.Url.Contains("bitbucket.example.invalid", StringComparison.Ordinal)
            || e.RequestMessage.Headers is { } h && h.TryGetValue("Host", out var host) && host.Any(x => x.Contains("bitbucket.example.invalid", StringComparison.Ordinal)));
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
    }

    [Fact]
    public void ProxyCredential_answers_the_proxy_challenge_and_the_cluster_is_read_through_it()
    {
        var r = Connect("-ProxyCredential $proxyCred");
        Assert.True(r.FirstError is null, r.FirstError?.ToString());
        Assert.Single(r.Output);
        Assert.Contains(_proxy.LogEntries, e => e.RequestMessage!.Headers is { } h && h.ContainsKey("Proxy-Authorization") && e.ResponseMessage!.StatusCode is 200);
        Assert.DoesNotContain(ProxyPassword, r.AllText);
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
    }
}
