using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>Cluster payloads as Bitbucket sends them, and WireMock shortcuts.</summary>
internal static class ZduTestData
{
    public const string Stable = """{"upgradeModeEnabled":false,"state":"STABLE","originalVersion":null,"nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","portNumber":5701,"state":"ACTIVE","version":"8.19.3","tasksTotal":2,"activeUserCount":5,"local":true},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","portNumber":5701,"state":"ACTIVE","version":"8.19.3"}],"links":[{"rel":"self","href":"/"},{"rel":"start","href":"/start"}]}""";
    public const string ReadyToUpgrade = """{"upgradeModeEnabled":true,"state":"READY_TO_UPGRADE","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.3"}],"links":[{"rel":"self","href":"/"},{"rel":"cancel","href":"/cancel"}]}""";
    public const string Mixed = """{"upgradeModeEnabled":true,"state":"MIXED","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.3"},{"id":"c3","name":"node-3","ipAddress":"10.0.0.3","state":"ERROR","version":"8.19.4"}],"links":[{"rel":"self","href":"/"}]}""";
    public const string ReadyToFinalize = """{"upgradeModeEnabled":true,"state":"READY_TO_RUN_UPGRADE_TASKS","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.4"}],"links":[{"rel":"self","href":"/"},{"rel":"approve","href":"/approve"}]}""";

    public static IResponseBuilder Json(string body, int status = 200) =>
        Response.Create().WithStatusCode(status).WithHeader("Content-Type", "application/json").WithBody(body);

    public static void Answer(this WireMockServer server, string method, string path, IResponseBuilder response) =>
        server.Given(Request.Create().WithPath(path).UsingMethod(method)).RespondWith(response);

    /// <summary>Answers <paramref name="first"/> for the first <paramref name="times"/> calls, then <paramref name="then"/>.</summary>
    public static void AnswerSequence(this WireMockServer server, string method, string path, IResponseBuilder first, int times, IResponseBuilder then)
    {
        var scenario = method + path + Guid.NewGuid();
        for (var i = 0; i < times; i++)
        {
            var m = server.Given(Request.Create().WithPath(path).UsingMethod(method)).InScenario(scenario);
            (i == 0 ? m : m.WhenStateIs("s" + i)).WillSetStateTo("s" + (i + 1)).RespondWith(first);
        }
        server.Given(Request.Create().WithPath(path).UsingMethod(method)).InScenario(scenario).WhenStateIs("s" + times).RespondWith(then);
    }

    public static int Count(this WireMockServer server, string method, string path) =>
        server.LogEntries.Count(e => e.RequestMessage!.Path == path && string.Equals(e.RequestMessage.Method, method, StringComparison.OrdinalIgnoreCase));

    public static ZduClientOptions Options(string url, bool bearer = false) =>
        new(new Uri(url), bearer ? ZduCredential.Bearer(Canary.Secure(Canary.Token)) : ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password)))
        {
            RequestTimeout = TimeSpan.FromSeconds(5),
            RetryDeadline = TimeSpan.FromSeconds(5),
            RetryBaseDelay = TimeSpan.FromMilliseconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(50),
            MaxRetries = 3,
        };
}
