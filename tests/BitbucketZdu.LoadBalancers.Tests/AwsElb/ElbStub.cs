using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Web;
using BitbucketZdu.LoadBalancers.Tests.Support;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>
/// The ELBv2 Query API (Version 2015-12-01) of one region, as far as BitbucketZdu uses it: POST / with a form body
/// (Action, Version, TargetGroupArn, Targets.member.N.Id/Port), signed with Signature Version 4, which the stub checks
/// itself from the request it received — the requests come from the real AWS CLI v2 (--endpoint-url), so this checks
/// that the CLI signed with the keys its credential chain found. Written from these pages (not copied; README.md):
/// - DeregisterTargets: https://docs.amazonaws.cn/goto/WebAPI/elasticloadbalancingv2-2015-12-01/DeregisterTargets
///   (a target that does not exist: success; the target drains for the deregistration delay; InvalidTarget, TargetGroupNotFound 400)
/// - DescribeTargetGroups: https://docs.amazonaws.cn/goto/WebAPI/elasticloadbalancingv2-2015-12-01/DescribeTargetGroups
///   (TargetGroupArns.member.N; TargetGroups.member.N with TargetType instance | ip | lambda | alb)
/// - DescribeTargetHealth: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetHealth.md
///   (no Targets: the registered ones; TargetHealthDescriptions.member.N)
/// - TargetHealth: https://docs.aws.amazon.com/goto/WebAPI/elasticloadbalancingv2-2015-12-01/TargetHealth
///   (initial Elb.RegistrationInProgress / Elb.InitialHealthChecking, healthy without a reason, unhealthy Target.FailedHealthChecks,
///   draining Target.DeregistrationInProgress, unused Target.NotRegistered)
/// - Common errors: https://docs.aws.amazon.com/es_es/elasticloadbalancing/latest/APIReference/CommonErrors.html
///   (AccessDeniedException 400, IncompleteSignature 400, InvalidClientTokenId 403, MissingAuthenticationToken 403, Throttling 400)
///   and throttling: https://docs.amazonaws.cn/en_us/elasticloadbalancing/latest/userguide/elb-api-throttling.md ("Rate exceeded")
/// - Signature Version 4: https://docs.aws.amazon.com/eu_eu/IAM/latest/UserGuide/reference_sigv-create-signed-request.md
/// Over time: a registered target is initial for <see cref="InitialFor"/> (then healthy, or unhealthy while
/// <see cref="HealthCheck"/> says so); a deregistered one drains for <see cref="DeregistrationDelay"/>, then it is gone.
/// </summary>
public sealed class ElbStub : IDisposable
{
    public const string Region = "eu-west-1";
    public const string AccessKeyId = "AKIAIOSFODNN7EXAMPLE";
    private readonly object _gate = new();
    private readonly Dictionary<string, Target> _targets = new(StringComparer.Ordinal);

    public sealed class Target
    {
        public string Id = "";
        public int Port;
        public string State = "healthy";
        public DateTimeOffset Since = DateTimeOffset.UtcNow;
        public bool Registered = true;
    }

    public ElbStub(string secret, params string[] targets)
    {
        Secret = secret;
        TargetGroupArn = $"arn:aws:elasticloadbalancing:{Region}:123456789012:targetgroup/bitbucket-http/73e2d6bc24d8a067";
        foreach (var t in targets)
        {
            var i = t.LastIndexOf(':');
            Known.Add(t[..i]);
            _targets[t] = new Target { Id = t[..i], Port = int.Parse(t[(i + 1)..], CultureInfo.InvariantCulture) };
        }
        Server = WireMockServer.Start();
        Server.Given(Request.Create().WithPath("/").UsingPost()).RespondWith(Response.Create().WithCallback(req =>
        {
            lock (_gate) return Handle(req);
        }));
    }

    public WireMockServer Server { get; }
    public string Url => Server.Urls[0].Replace("0.0.0.0", "127.0.0.1") + "/";
    /// <summary>The access key id requests must be signed with (an instance role's temporary one, say).</summary>
    public string KeyId { get; init; } = AccessKeyId;
    public string Secret { get; }
    /// <summary>The group's target type: "ip" (targets by address) or "instance" (by instance id).</summary>
    public string TargetType { get; set; } = "ip";
    public string TargetGroupArn { get; }
    /// <summary>Target ids that exist in the VPC (others are InvalidTarget).</summary>
    public HashSet<string> Known { get; } = new(StringComparer.Ordinal);
    /// <summary>A session token the request must carry (temporary credentials), or null.</summary>
    public string? SessionToken { get; set; }
    public TimeSpan InitialFor { get; set; } = TimeSpan.FromMilliseconds(300);
    public TimeSpan DeregistrationDelay { get; set; } = TimeSpan.FromMilliseconds(800);
    public Func<Target, bool>? HealthCheck { get; set; }
    /// <summary>Actions the identity may not call.</summary>
    public HashSet<string> Denied { get; } = new();
    /// <summary>The next this many calls answer Throttling.</summary>
    public int ThrottleNext { get; set; }
    public ConcurrentQueue<string> Calls { get; } = new();
    public ConcurrentQueue<string> AllRequests { get; } = new();

    /// <summary>The targets the load balancer routes new requests to: the registered, healthy ones.</summary>
    public IReadOnlyList<Target> Serving()
    {
        lock (_gate) { Advance(); return _targets.Values.Where(t => t.Registered && t.State == "healthy").ToList(); }
    }

    /// <summary>The traffic side: a front that sends each request to one of the healthy targets, round-robin.</summary>
    public StubDataPlane StartDataPlane()
    {
        var next = 0;
        return new StubDataPlane(() =>
        {
            var serving = Serving();
            if (serving.Count == 0) return null;
            var t = serving[(Interlocked.Increment(ref next) & int.MaxValue) % serving.Count];
            return $"{t.Id}:{t.Port}";
        });
    }

    public Target? Get(string idPort)
    {
        lock (_gate) { Advance(); return _targets.TryGetValue(idPort, out var t) ? t : null; }
    }

    private void Advance()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var t in _targets.Values)
        {
            if (t.State == "draining" && now - t.Since >= DeregistrationDelay) { t.Registered = false; t.State = "unused"; }
            else if (t.Registered && t.State != "draining" && now - t.Since >= InitialFor)
                t.State = HealthCheck is null || HealthCheck(t) ? "healthy" : "unhealthy";
        }
    }

    private static WireMock.ResponseMessage Error(int status, string code, string message)
    {
        var xml = $"<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{System.Security.SecurityElement.Escape(message)}</Message></Error><RequestId>{Guid.NewGuid()}</RequestId></ErrorResponse>";
        var r = Stub.Json(status, xml);
        r.Headers!["Content-Type"] = new WireMock.Types.WireMockList<string>("text/xml");
        return r;
    }

    private static WireMock.ResponseMessage Ok(string action, string result)
    {
        var xml = $"<{action}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{Guid.NewGuid()}</RequestId></ResponseMetadata></{action}Response>";
        var r = Stub.Json(200, xml);
        r.Headers!["Content-Type"] = new WireMock.Types.WireMockList<string>("text/xml");
        return r;
    }

    private WireMock.ResponseMessage Handle(WireMock.IRequestMessage req)
    {
        var body = req.Body ?? "";
        AllRequests.Enqueue($"{string.Join(";", req.Headers?.Select(h => h.Key + "=" + string.Join(",", h.Value)) ?? Array.Empty<string>())} {body}");
        if (CheckSignature(req, body) is { } refused) return refused;
        var form = HttpUtility.ParseQueryString(body);
        var action = form["Action"] ?? "";
        Calls.Enqueue(action);
        if (form["Version"] != "2015-12-01") return Error(400, "InvalidAction", $"Could not find operation {action} for version {form["Version"]}");
        if (ThrottleNext > 0) { ThrottleNext--; return Error(400, "Throttling", "Rate exceeded"); }
        if (Denied.Contains(action))
            return Error(400, "AccessDeniedException", $"User: arn:aws:iam::123456789012:user/bbzdu is not authorized to perform: elasticloadbalancing:{action} on resource: {form["TargetGroupArn"]} because no identity-based policy allows the elasticloadbalancing:{action} action");
        if (action == "DescribeTargetGroups")
            return form["TargetGroupArns.member.1"] != TargetGroupArn ? Error(400, "TargetGroupNotFound", "One or more target groups not found")
                : Ok(action, $"<TargetGroups><member><TargetGroupArn>{TargetGroupArn}</TargetGroupArn><TargetGroupName>bitbucket-http</TargetGroupName><Protocol>HTTP</Protocol><Port>7990</Port><VpcId>vpc-3ac0fb5f</VpcId><TargetType>{TargetType}</TargetType></member></TargetGroups>");
        if (form["TargetGroupArn"] != TargetGroupArn) return Error(400, "TargetGroupNotFound", "One or more target groups not found");
        var asked = new List<(string Id, int Port)>();
        for (var n = 1; form[$"Targets.member.{n}.Id"] is string id; n++)
            asked.Add((id, int.Parse(form[$"Targets.member.{n}.Port"] ?? "7990", CultureInfo.InvariantCulture)));
        Advance();
        if (asked.FirstOrDefault(a => !Known.Contains(a.Id)) is { Id: not null } bad)
            return Error(400, "InvalidTarget", $"The following targets are not in a running state and cannot be registered: '{bad.Id}'");
        switch (action)
        {
            case "DescribeTargetHealth":
                var rows = asked.Count == 0
                    ? _targets.Values.Where(t => t.Registered).ToList()
                    : asked.Select(a => _targets.TryGetValue($"{a.Id}:{a.Port}", out var t) ? t : new Target { Id = a.Id, Port = a.Port, Registered = false, State = "unused" }).ToList();
                return Ok(action, "<TargetHealthDescriptions>" + string.Concat(rows.Select(Describe)) + "</TargetHealthDescriptions>");
            case "DeregisterTargets":
                foreach (var a in asked)
                    if (_targets.TryGetValue($"{a.Id}:{a.Port}", out var t) && t.Registered && t.State != "draining")
                    { t.State = "draining"; t.Since = DateTimeOffset.UtcNow; }
                return Ok(action, "");
            case "RegisterTargets":
                foreach (var a in asked)
                {
                    var key = $"{a.Id}:{a.Port}";
                    if (!_targets.TryGetValue(key, out var t)) _targets[key] = t = new Target { Id = a.Id, Port = a.Port };
                    t.Registered = true; t.State = "initial"; t.Since = DateTimeOffset.UtcNow;
                }
                return Ok(action, "");
            default:
                return Error(400, "InvalidAction", $"Could not find operation {action} for version 2015-12-01");
        }
    }

    private static string Describe(Target t)
    {
        var (reason, description) = t.State switch
        {
            "initial" => ("Elb.RegistrationInProgress", "Target registration is in progress"),
            "unhealthy" => ("Target.FailedHealthChecks", "Health checks failed"),
            "draining" => ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
            "unused" => ("Target.NotRegistered", "Target is not registered to the target group"),
            _ => ((string?)null, (string?)null),
        };
        return $"<member><HealthCheckPort>{t.Port}</HealthCheckPort><Target><Port>{t.Port}</Port><Id>{t.Id}</Id></Target><TargetHealth>" +
               (reason is null ? "" : $"<Reason>{reason}</Reason><Description>{description}</Description>") + $"<State>{t.State}</State></TargetHealth></member>";
    }

    /// <summary>Recomputes the SigV4 signature from the request as received; null when it matches.</summary>
    private WireMock.ResponseMessage? CheckSignature(WireMock.IRequestMessage req, string body)
    {
        var auth = Stub.Header(req, "Authorization");
        if (auth is null) return Error(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
        var m = System.Text.RegularExpressions.Regex.Match(auth, @"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$");
        if (!m.Success) return Error(400, "IncompleteSignature", $"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature': {auth.Split(' ')[0]}");
        var (key, date, region, service, signedHeaders, signature) = (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value, m.Groups[5].Value, m.Groups[6].Value);
        if (key != KeyId) return Error(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
        var amzDate = Stub.Header(req, "X-Amz-Date") ?? "";
        if (!DateTime.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var when)
            || Math.Abs((DateTime.UtcNow - when).TotalMinutes) > 5 || !amzDate.StartsWith(date, StringComparison.Ordinal))
            return Error(400, "RequestExpired", "Request has expired.");
        if (region != Region || service != "elasticloadbalancing")
            return Error(403, "SignatureDoesNotMatch", $"Credential should be scoped to a valid region and service ({region}/{service}).");
        var names = signedHeaders.Split(';');
        if (!names.Contains("host") || !names.Contains("x-amz-date")) return Error(400, "IncompleteSignature", "host and x-amz-date must be signed.");
        if (SessionToken is not null && (Stub.Header(req, "X-Amz-Security-Token") != SessionToken || !names.Contains("x-amz-security-token")))
            return Error(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
        static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();
        var canonical = "POST\n/\n\n" + string.Concat(names.Select(n => n + ":" + string.Join(" ", (Stub.Header(req, n) ?? "").Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)) + "\n"))
                        + "\n" + signedHeaders + "\n" + Hex(SHA256.HashData(Encoding.UTF8.GetBytes(body)));
        var toSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{date}/{region}/{service}/aws4_request\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))}";
        var k = Encoding.UTF8.GetBytes("AWS4" + Secret);
        foreach (var part in new[] { date, region, service, "aws4_request" }) k = HMACSHA256.HashData(k, Encoding.UTF8.GetBytes(part));
        return Hex(HMACSHA256.HashData(k, Encoding.UTF8.GetBytes(toSign))) == signature ? null
            : Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.");
    }

    public void Dispose() => Server.Stop();
}
