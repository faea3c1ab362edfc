using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.Core.Tests.Api;

public sealed class ZduClientRequestTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();

    private ZduClient NewClient(string contextPath = "") =>
        new(new ZduClientOptions(new Uri(_server.Url + contextPath), ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password))));

    [Fact]
    public async Task Post_start_sends_the_headers_bitbucket_requires_under_a_context_path()
    {
        _server.Given(Request.Create().WithPath("/bitbucket/rest/zdu/start").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json")
                .WithBody("""{"upgradeModeEnabled":true,"state":"READY_TO_UPGRADE","originalVersion":"8.19.3","nodes":[],"links":[{"rel":"self","href":"/"}]}"""));
        using var client = NewClient("/bitbucket");

        var cluster = await client.StartAsync();

        Assert.Equal(ClusterState.READY_TO_UPGRADE, cluster.State);
        var request = Assert.Single(_server.LogEntries).RequestMessage!;
        Assert.Equal("no-check", request.Headers!["X-Atlassian-Token"].Single());
        Assert.Contains("application/json", request.Headers["Accept"].Single());
        Assert.StartsWith("application/json", request.Headers["Content-Type"].Single());
        Assert.StartsWith("BitbucketZdu/", request.Headers["User-Agent"].Single());
        Assert.StartsWith("Basic ", request.Headers["Authorization"].Single());
        Assert.True(string.IsNullOrEmpty(request.Body));
    }

    [Fact]
    public async Task A_409_names_the_problem_and_never_the_credential()
    {
        _server.Given(Request.Create().WithPath("/rest/zdu/approve").UsingPost()).RespondWith(Response.Create().WithStatusCode(409));
        using var client = NewClient();

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.ApproveAsync());

        Assert.Equal(ZduErrorKind.InvalidState, ex.Kind);
        Assert.Equal("ZduInvalidState", ex.ErrorId);
        Assert.Contains("/rest/zdu/approve", ex.Message);
        Canary.AssertAbsent(ex.ToString(), "the exception");
    }

    public void Dispose() => _server.Stop();
}
