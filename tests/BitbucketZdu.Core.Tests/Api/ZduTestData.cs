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

    public static IResponseBuilder Reply(string body, int status = 200) =>
        Response.Create().WithStatusCode(status).WithHeader("Content-Type", "application/json").WithBody(body);

    public static void Answer(this WireMockServer server, string method, string path, IResponseBuilder response) =>
        server.Given(Request.Create().WithPath(path).UsingMethod(method)).RespondWith(response);

    /// <summary>Answers <paramref name="first"/> for the first <paramref name="times"/> calls, then <paramref name="then"/>.</summary>
    public static void AnswerSequence(this WireMockServer server, string method, string path, IResponseBuilder first, int times, IResponseBuilder then) =>
        server.AnswerSteps(method, path, (first, times), (then, 1));

    /// <summary>Answers each step's response for its number of calls, in order; the last step repeats for ever.</summary>
    public static void AnswerSteps(this WireMockServer server, string method, string path, params (IResponseBuilder Response, int Times)[] steps)
    {
        var scenario = method + path + Guid.NewGuid();
        var call = 0;
        for (var s = 0; s < steps.Length; s++)
        {
            var last = s == steps.Length - 1;
            for (var i = 0; i < (last ? 1 : steps[s].Times); i++, call++)
            {
                var m = server.Given(Request.Create().WithPath(path).UsingMethod(method)).InScenario(scenario);
                if (call > 0) m = m.WhenStateIs("call" + call);
                if (!last) m = m.WillSetStateTo("call" + (call + 1));
                m.RespondWith(steps[s].Response);
            }
        }
    }

    public static int Count(this WireMockServer server, string method, string path) =>
        server.LogEntries.Count(e => e.RequestMessage!.Path == path && string.Equals(e.RequestMessage.Method, method, StringComparison.OrdinalIgnoreCase));

    public static ZduClientOptions Options(string url, bool bearer = false) =>
        new(new Uri(url), bearer ? ZduCredential.Bearer(Canary.Secure(Canary.Token)) : ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password)))
        {
            // Generous: a first request on a loaded 2-core CI machine can take seconds. Tests of timeouts set their own.
            RequestTimeout = TimeSpan.FromSeconds(30),
            RetryDeadline = TimeSpan.FromSeconds(60),
            RetryBaseDelay = TimeSpan.FromMilliseconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(50),
            MaxRetries = 3,
        };
}
