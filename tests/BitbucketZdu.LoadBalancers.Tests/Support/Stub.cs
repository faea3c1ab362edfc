using WireMock;
using WireMock.Types;
using WireMock.Util;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>Helpers for stateful WireMock.Net callbacks.</summary>
public static class Stub
{
    public static ResponseMessage Json(int status, string body, params (string Name, string Value)[] headers)
    {
        var r = new ResponseMessage
        {
            StatusCode = status,
            BodyData = new BodyData { BodyAsString = body, DetectedBodyType = BodyType.String },
            Headers = new Dictionary<string, WireMockList<string>> { ["Content-Type"] = new WireMockList<string>("application/json") },
        };
        foreach (var (name, value) in headers) r.Headers[name] = new WireMockList<string>(value);
        return r;
    }

    public static string? Header(IRequestMessage request, string name) =>
        request.Headers?.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value?.FirstOrDefault();

    public static string? Query(IRequestMessage request, string name) =>
        request.Query?.FirstOrDefault(q => string.Equals(q.Key, name, StringComparison.OrdinalIgnoreCase)).Value?.FirstOrDefault();
}
