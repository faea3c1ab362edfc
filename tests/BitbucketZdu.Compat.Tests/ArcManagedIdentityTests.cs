using System.Net;
using System.Security;
using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.LoadBalancers.AzureAppGateway;

namespace BitbucketZdu.Compat.Tests;

/// <summary>
/// Managed identity on an Azure Arc-enabled Hybrid Runbook Worker: IDENTITY_ENDPOINT without IDENTITY_HEADER, an
/// api-version, a 401 whose WWW-Authenticate Basic realm names a key file, the retry with that file's content
/// (Microsoft Learn: "Authenticate against Azure resources with Azure Arc-enabled servers"). Recorded, not live.
/// </summary>
public sealed class ArcManagedIdentityTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bbzdu arc " + Guid.NewGuid().ToString("N")[..8], "Tokens");

    public ArcManagedIdentityTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private sealed class ArcAgent(string keyFile, string secret) : HttpMessageHandler
    {
        public List<(string Uri, string? Authorization, string? Metadata, bool IdentityHeader)> Requests { get; } = new();
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var auth = request.Headers.TryGetValues("Authorization", out var a) ? a.Single() : null;
            Requests.Add((request.RequestUri!.ToString(), auth, request.Headers.TryGetValues("Metadata", out var m) ? m.Single() : null, request.Headers.Contains("X-IDENTITY-HEADER")));
            if (auth is null)
            {
                var challenge = new HttpResponseMessage(HttpStatusCode.Unauthorized);
                challenge.Headers.TryAddWithoutValidation("WWW-Authenticate", "Basic realm=" + keyFile);
                return Task.FromResult(challenge);
            }
            if (auth != "Basic " + secret) return Task.FromResult(new HttpResponseMessage(HttpStatusCode.Unauthorized));
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent("""{"access_token":"arc-token-value","expires_in":"3600","token_type":"Bearer"}"""),
            });
        }
    }

    private static LoadBalancerDescription Arc() => new(LoadBalancerKind.AzureAppGateway, new[] { "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g" }, "pool")
    {
        AzureAuthentication = AzureAuthentication.ManagedIdentity,
        IdentityEndpoint = new Uri("http://localhost:40342/metadata/identity/oauth2/token"),
        IdentityHeader = new SecureString(),   // empty: what an Arc agent gives (no IDENTITY_HEADER)
    };

    [Fact]
    public async Task The_secret_file_challenge_is_answered_with_the_file_content()
    {
        var keyFile = Path.Combine(_dir, "4f1c.key");
        File.WriteAllText(keyFile, "secret-from-the-agent\n");
        var agent = new ArcAgent(keyFile, "secret-from-the-agent");
        var source = new AzureTokenSource(Arc(), new HttpClient(agent)) { ArcKeyDirectory = _dir, ArcAgent = true };

        Assert.Equal("arc-token-value", await source.GetTokenAsync(false, default));

        Assert.Equal(2, agent.Requests.Count);
        foreach (var r in agent.Requests)
        {
            Assert.StartsWith("http://localhost:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource=", r.Uri);
            Assert.Equal("true", r.Metadata);
            Assert.False(r.IdentityHeader);
        }
        Assert.Null(agent.Requests[0].Authorization);
        Assert.Equal("Basic secret-from-the-agent", agent.Requests[1].Authorization);

        // Cached: no third request while the token is valid.
        Assert.Equal("arc-token-value", await source.GetTokenAsync(false, default));
        Assert.Equal(2, agent.Requests.Count);
    }

    [Theory]
    [InlineData("outside")]      // a file elsewhere
    [InlineData("notakey")]      // not a .key file
    public async Task A_challenge_naming_a_file_the_agent_does_not_write_is_refused_unread(string kind)
    {
        var other = kind == "outside" ? Path.Combine(Path.GetDirectoryName(_dir)!, "x.key") : Path.Combine(_dir, "x.txt");
        File.WriteAllText(other, "must-not-be-sent");
        var agent = new ArcAgent(other, "must-not-be-sent");
        var source = new AzureTokenSource(Arc(), new HttpClient(agent)) { ArcKeyDirectory = _dir, ArcAgent = true };

        var ex = await Assert.ThrowsAsync<BbException>(() => source.GetTokenAsync(false, default));
        Assert.Equal("AzureArcChallengeInvalid", ex.ErrorId);
        Assert.Single(agent.Requests);
        Assert.DoesNotContain("must-not-be-sent", ex.Message);
    }

    [Fact]
    public async Task Automation_sandbox_endpoint_with_a_header_keeps_its_own_flow()
    {
        var agent = new ArcAgent("unused", "unused");
        var d = Arc();
        d.IdentityHeader = new SecureString();
        foreach (var c in "sandbox-header") d.IdentityHeader.AppendChar(c);
        var source = new AzureTokenSource(d, new HttpClient(agent)) { ArcKeyDirectory = _dir };   // decided from the header
        await Assert.ThrowsAsync<BbException>(() => source.GetTokenAsync(false, default));   // the stub challenges; no Arc retry
        Assert.Single(agent.Requests);
        Assert.True(agent.Requests[0].IdentityHeader);
        Assert.DoesNotContain("api-version", agent.Requests[0].Uri);
    }

    [Theory]
    [InlineData(null, "http://localhost:40342", true)]      // Arc agent: IMDS_ENDPOINT, no IDENTITY_HEADER
    [InlineData("h", "http://localhost:40342", false)]      // a header: not the agent
    [InlineData(null, null, false)]                         // Automation sandbox style endpoint without IMDS_ENDPOINT
    public void The_Arc_agent_is_told_apart_by_its_environment(string? header, string? imds, bool arc) =>
        Assert.Equal(arc, AzureTokenSource.IsArcAgent(header, imds));
}
