using System.Collections.Concurrent;
using System.Globalization;
using BitbucketZdu.LoadBalancers.Tests.Support;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>
/// The EC2 instance metadata service, version 2 only, as far as a role's credentials go (written from AWS's pages, see
/// README.md): PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds gives a session token; every GET must
/// carry it as X-aws-ec2-metadata-token (else 401); /latest/meta-data/iam/security-credentials/ names the role and
/// /latest/meta-data/iam/security-credentials/&lt;role&gt; gives its temporary keys (AccessKeyId, SecretAccessKey, Token,
/// Expiration). The AWS CLI is pointed here with AWS_EC2_METADATA_SERVICE_ENDPOINT.
/// </summary>
public sealed class ImdsStub : IDisposable
{
    public const string Role = "bitbucket-zdu-ops";
    public const string KeyId = "ASIAIOSFODNN7ROLEKEY";
    private readonly string _imdsToken = "imds-" + Guid.NewGuid().ToString("N");

    public ImdsStub(string secret, string sessionToken)
    {
        Secret = secret;
        SessionToken = sessionToken;
        Server = WireMockServer.Start();
        Server.Given(Request.Create().UsingAnyMethod()).RespondWith(Response.Create().WithCallback(Handle));
    }

    public WireMockServer Server { get; }
    public string Url => Server.Urls[0].Replace("0.0.0.0", "127.0.0.1") + "/";
    public string Secret { get; }
    public string SessionToken { get; }
    /// <summary>"METHOD path (token: yes/no)" per request.</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    private WireMock.ResponseMessage Handle(WireMock.IRequestMessage req)
    {
        var path = req.Path;
        var token = Stub.Header(req, "X-aws-ec2-metadata-token");
        Log.Enqueue($"{req.Method} {path} (token: {(token == _imdsToken ? "yes" : "no")})");
        if (req.Method == "PUT" && path == "/latest/api/token")
            return int.TryParse(Stub.Header(req, "X-aws-ec2-metadata-token-ttl-seconds"), NumberStyles.None, CultureInfo.InvariantCulture, out var ttl) && ttl >= 1 && ttl <= 21600
                ? Text(200, _imdsToken) : Text(400, "");
        if (req.Method != "GET") return Text(405, "");
        if (token != _imdsToken) return Text(401, ""); // IMDSv2 only: no token, no metadata
        if (path == "/latest/meta-data/iam/security-credentials/") return Text(200, Role);
        if (path == "/latest/meta-data/iam/security-credentials/" + Role)
            return Stub.Json(200, $$"""
                {"Code":"Success","LastUpdated":"{{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}}","Type":"AWS-HMAC","AccessKeyId":"{{KeyId}}","SecretAccessKey":"{{Secret}}","Token":"{{SessionToken}}","Expiration":"{{DateTime.UtcNow.AddHours(6):yyyy-MM-ddTHH:mm:ssZ}}"}
                """);
        return Text(404, "");
    }

    private static WireMock.ResponseMessage Text(int status, string body)
    {
        var r = Stub.Json(status, body);
        r.Headers!["Content-Type"] = new WireMock.Types.WireMockList<string>("text/plain");
        return r;
    }

    public void Dispose() => Server.Stop();
}
