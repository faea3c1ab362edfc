using System.Text;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>Every endpoint, its method, path and headers, both kinds of authentication, and the error translation.</summary>
public sealed class ZduClientEndpointTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();

    private ZduClient Client(bool bearer = false) => new(Options(_server.Url!, bearer));

    public static TheoryData<string, string, string> Endpoints => new()
    {
        { "GetCluster", "GET", "/rest/zdu/cluster" },
        { "GetState", "GET", "/rest/zdu/state" },
        { "GetNode", "GET", "/rest/zdu/nodes/a%201" },
        { "Start", "POST", "/rest/zdu/start" },
        { "Cancel", "POST", "/rest/zdu/cancel" },
        { "Approve", "POST", "/rest/zdu/approve" },
        { "RetryUpgrade", "POST", "/rest/zdu/retryUpgrade" },
    };

    private static Task<object> Call(ZduClient c, string name) => name switch
    {
        "GetCluster" => c.GetClusterAsync().ContinueWith(t => (object)t.Result),
        "GetState" => c.GetStateAsync().ContinueWith(t => (object)t.Result),
        "GetNode" => c.GetNodeAsync("a 1").ContinueWith(t => (object)t.Result),
        "Start" => c.StartAsync().ContinueWith(t => (object)t.Result),
        "Cancel" => c.CancelAsync().ContinueWith(t => (object)t.Result),
        "Approve" => c.ApproveAsync().ContinueWith(t => (object)t.Result),
        _ => c.RetryUpgradeAsync().ContinueWith(t => (object)t.Result),
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Each_call_uses_its_method_path_and_headers(string call, string method, string path)
    {
        var body = call switch
        {
            "GetState" => """{"state":"STABLE","buildInfo":{"id":"a1","name":"node-1","state":"ACTIVE","version":"8.19.3"}}""",
            "GetNode" => """{"id":"a 1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3","brandNewField":{"x":1}}""",
            _ => Stable,
        };
        _server.Given(WireMock.RequestBuilders.Request.Create().UsingAnyMethod()).RespondWith(Reply(body));
        using var client = Client();

        var result = await Call(client, call);

        Assert.NotNull(result);
        var request = Assert.Single(_server.LogEntries).RequestMessage!;
        Assert.Equal(method, request.Method);
        Assert.Equal(path, request.AbsolutePath.Replace(" ", "%20"));
        Assert.Contains("application/json", request.Headers!["Accept"].Single());
        Assert.StartsWith("BitbucketZdu/", request.Headers["User-Agent"].Single());
        var expectedAuth = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(Canary.UserName + ":" + Canary.Password));
        Assert.Equal(expectedAuth, request.Headers["Authorization"].Single());
        if (method == "POST")
        {
            Assert.Equal("no-check", request.Headers["X-Atlassian-Token"].Single());
            Assert.StartsWith("application/json", request.Headers["Content-Type"].Single());
            Assert.True(string.IsNullOrEmpty(request.Body));
        }
        else
        {
            Assert.False(request.Headers.ContainsKey("X-Atlassian-Token"));
        }
    }

    [Fact]
    public async Task A_bearer_token_is_sent_as_a_bearer_header()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        using var client = Client(bearer: true);

        await client.GetClusterAsync();

        Assert.Equal("Bearer " + Canary.Token, _server.LogEntries.Single().RequestMessage!.Headers!["Authorization"].Single());
    }

    [Fact]
    public async Task Tolerant_parsing_keeps_unknown_states_and_null_counts()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply("""{"upgradeModeEnabled":true,"state":"SOMETHING_NEW","extra":[1,2],"nodes":[{"id":"x","state":"HIBERNATING","finalization":null}],"links":[{"rel":"self","href":"/"},{"rel":"frobnicate","href":"/f"}]}"""));
        using var client = Client();

        var cluster = await client.GetClusterAsync();

        Assert.Equal(ClusterState.Unknown, cluster.State);
        Assert.Equal("SOMETHING_NEW", cluster.StateText);
        var node = Assert.Single(cluster.Nodes);
        Assert.Equal(NodeState.Unknown, node.State);
        Assert.Equal("HIBERNATING", node.StateText);
        Assert.Null(node.TasksTotal);
        Assert.Equal(new[] { "frobnicate" }, cluster.AllowedActions);
    }

    // ------------------------------------------------------------------ errors

    private async Task<ZduApiException> Fails(Func<ZduClient, Task> call, bool bearer = false)
    {
        using var client = Client(bearer);
        var ex = await Assert.ThrowsAsync<ZduApiException>(() => call(client));
        Canary.AssertAbsent(ex.ToString(), "the exception");
        Assert.DoesNotContain(Canary.UserName + ":", ex.Message);
        return ex;
    }

    [Fact]
    public async Task A_401_says_the_credentials_were_refused()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply("""{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}""", 401));

        var ex = await Fails(c => c.GetClusterAsync());

        Assert.Equal("ZduUnauthorized", ex.ErrorId);
        Assert.Equal(BbErrorCategory.AuthenticationError, ex.Category);
        Assert.Contains("Authentication failed", ex.Message);
        Assert.Contains(_server.Url + "/rest/zdu/cluster", ex.Message);
        Assert.Equal(1, _server.Count("GET", "/rest/zdu/cluster"));
    }

    [Theory]
    [InlineData("application/json", """{"errors":[{"context":null,"message":"You are not permitted to access this resource","exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}""", "You are not permitted to access this resource")]
    [InlineData("application/json", """{"status-code":403,"message":"Client must be authenticated as a system administrator to access this resource."}""", "Client must be authenticated as a system administrator")]
    [InlineData("application/xml", """<?xml version="1.0" encoding="UTF-8" standalone="yes"?><status><status-code>403</status-code><message>Rolling upgrades feature requires a clustered installation.</message></status>""", "Rolling upgrades feature requires a clustered installation.")]
    public async Task A_403_carries_the_servers_message_in_any_body_format(string contentType, string body, string expected)
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(403).WithHeader("Content-Type", contentType).WithBody(body));

        var ex = await Fails(c => c.GetClusterAsync());

        Assert.Equal("ZduForbidden", ex.ErrorId);
        Assert.Equal(BbErrorCategory.PermissionDenied, ex.Category);
        Assert.Contains(expected, ex.Message);
        Assert.Contains(expected, Assert.Single(ex.ServerMessages));
    }

    [Fact]
    public async Task A_403_with_a_token_explains_that_tokens_are_refused_on_admin_endpoints()
    {
        _server.Answer("POST", "/rest/zdu/start", Reply("""{"status-code":403,"message":"Client must be authenticated as a system administrator to access this resource."}""", 403));

        var ex = await Fails(c => c.StartAsync(), bearer: true);

        Assert.Equal("ZduTokenRefused", ex.ErrorId);
        Assert.Contains("access tokens", ex.Message);
        Assert.Contains("-Credential", ex.Message);
    }

    [Fact]
    public async Task A_404_for_a_node_names_the_id_and_says_ids_change()
    {
        _server.Answer("GET", "/rest/zdu/nodes/gone", Response.Create().WithStatusCode(404));

        var ex = await Fails(c => c.GetNodeAsync("gone"));

        Assert.Equal("ZduNotFound", ex.ErrorId);
        Assert.Equal(BbErrorCategory.ObjectNotFound, ex.Category);
        Assert.Contains("'gone'", ex.Message);
        Assert.Contains("Get-BbNode", ex.Message);
        Assert.Equal(1, _server.Count("GET", "/rest/zdu/nodes/gone"));
    }

    [Fact]
    public async Task A_409_re_reads_the_cluster_and_names_its_state_and_what_is_allowed()
    {
        _server.Answer("POST", "/rest/zdu/start", Response.Create().WithStatusCode(409));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(ReadyToUpgrade));

        var ex = await Fails(c => c.StartAsync());

        Assert.Equal("ZduInvalidState", ex.ErrorId);
        Assert.Equal(BbErrorCategory.InvalidOperation, ex.Category);
        Assert.Contains("READY_TO_UPGRADE", ex.Message);
        Assert.Contains("Allowed now: cancel", ex.Message);
        Assert.Contains("already enabled", ex.Message);
        Assert.Equal(ClusterState.READY_TO_UPGRADE, ex.Cluster!.State);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/start"));
    }

    [Fact]
    public async Task A_409_for_approve_in_MIXED_names_nodes_versions_and_ERROR_nodes()
    {
        _server.Answer("POST", "/rest/zdu/approve", Response.Create().WithStatusCode(409));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));

        var ex = await Fails(c => c.ApproveAsync());

        Assert.Contains("MIXED", ex.Message);
        Assert.Contains("on 8.19.3: node-2", ex.Message);
        Assert.Contains("on 8.19.4: node-1", ex.Message);
        Assert.Contains("ERROR: node-3", ex.Message);
    }

    [Fact]
    public async Task A_500_is_a_server_error_and_is_not_retried()
    {
        _server.Answer("GET", "/rest/zdu/state", Reply("""{"errors":[{"message":"failed to find local node"}]}""", 500));

        var ex = await Fails(c => c.GetStateAsync());

        Assert.Equal("ZduServerError", ex.ErrorId);
        Assert.Equal(BbErrorCategory.ResourceUnavailable, ex.Category);
        Assert.Contains("failed to find local node", ex.Message);
        Assert.Equal(1, _server.Count("GET", "/rest/zdu/state"));
    }

    [Theory]
    [InlineData("text/html", "<!DOCTYPE html><html><head><title>Log in - SSO</title></head><body><form action=\"/login\"></form></body></html>", "HTML page")]
    [InlineData("text/html", "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>", "HTML page")]
    [InlineData("application/json", """{"name":"Jira","version":"9"}""", "not the rolling-upgrade JSON")]
    public async Task A_200_that_is_not_the_cluster_json_says_what_came_back(string contentType, string body, string expected)
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(200).WithHeader("Content-Type", contentType).WithBody(body));

        var ex = await Fails(c => c.GetClusterAsync());

        Assert.Equal("ZduUnexpectedResponse", ex.ErrorId);
        Assert.Equal(BbErrorCategory.InvalidResult, ex.Category);
        Assert.Contains(expected, ex.Message);
        Assert.Contains(contentType, ex.Message);
    }

    [Fact]
    public async Task A_redirect_to_a_login_page_is_not_followed_and_says_where_it_goes()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(302)
            .WithHeader("Location", "https://sso.example.com/idp/login?RelayState=abc123&SAMLRequest=xyz"));

        var ex = await Fails(c => c.GetClusterAsync());

        Assert.Equal("ZduRedirected", ex.ErrorId);
        Assert.Contains("https://sso.example.com/idp/login", ex.Message);
        Assert.DoesNotContain("RelayState", ex.Message);
        Assert.Single(_server.LogEntries);
    }

    [Fact]
    public async Task A_redirect_to_https_says_to_use_the_https_url()
    {
        var https = new Uri(_server.Url!.Replace("http://", "https://") + "/rest/zdu/cluster");
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(301).WithHeader("Location", https.ToString()));

        var ex = await Fails(c => c.GetClusterAsync());

        Assert.Contains("connect with the https URL", ex.Message);
    }

    [Fact]
    public async Task A_post_404_falls_back_to_the_7x_documented_path()
    {
        _server.Answer("POST", "/rest/zdu/cluster/start", Reply(ReadyToUpgrade));
        using var client = Client();

        var cluster = await client.StartAsync();

        Assert.True(cluster.UpgradeModeEnabled);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/start"));
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/cluster/start"));
    }

    [Fact]
    public async Task A_post_404_on_both_paths_names_both()
    {
        var ex = await Fails(c => c.RetryUpgradeAsync());

        Assert.Equal("ZduNotFound", ex.ErrorId);
        Assert.Contains("/rest/zdu/retryUpgrade", ex.Message);
        Assert.Contains("/rest/zdu/cluster/retryUpgrade", ex.Message);
    }

    public void Dispose() => _server.Stop();
}
