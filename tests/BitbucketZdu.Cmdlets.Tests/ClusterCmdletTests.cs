using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.Cmdlets.Tests;

public sealed class ClusterCmdletTests : IDisposable
{
    private const string Stable = """{"upgradeModeEnabled":false,"state":"STABLE","originalVersion":null,"nodes":[{"id":"a","name":"node-1","ipAddress":"127.0.0.1","state":"ACTIVE","version":"8.19.3"}],"links":[{"rel":"self","href":"/"},{"rel":"start","href":"/start"}]}""";
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly PowerShellHost _ps = new();

    private Dictionary<string, object?> Vars() => new()
    {
        ["uri"] = _server.Url,
        ["cred"] = new System.Management.Automation.PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
    };

    [Fact]
    public void Connect_then_Get_status_returns_the_cluster()
    {
        _server.Given(Request.Create().WithPath("/rest/zdu/cluster").UsingGet())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody(Stable));

        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred; Get-BbClusterStatus", Vars());

        Assert.Null(r.FirstError);
        var status = Assert.Single(r.Output);
        Assert.Equal("STABLE", status.Properties["State"].Value.ToString());
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
    }

    [Fact]
    public void Wrong_credentials_give_a_stable_error_id()
    {
        _server.Given(Request.Create().WithPath("/rest/zdu/cluster").UsingGet())
            .RespondWith(Response.Create().WithStatusCode(401).WithHeader("Content-Type", "application/json")
                .WithBody("""{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}"""));

        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred", Vars());

        var error = r.FirstError;
        Assert.NotNull(error);
        Assert.Equal("ZduUnauthorized,BitbucketZdu.Cmdlets.ConnectBbClusterCommand", error!.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.AuthenticationError, error.CategoryInfo.Category);
        Assert.Contains("Authentication failed", error.Exception.Message);
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
    }

    [Fact]
    public void Without_a_connection_the_error_says_how_to_connect()
    {
        var r = _ps.Run("Get-BbClusterStatus");
        Assert.Equal("BbNotConnected,BitbucketZdu.Cmdlets.GetBbClusterStatusCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Contains("Connect-BbCluster", r.FirstError.Exception.Message);
    }

    public void Dispose()
    {
        _ps.Dispose();
        _server.Stop();
    }
}
