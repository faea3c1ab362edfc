using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using System.Xml.Linq;
using Polly;
using Polly.Retry;

namespace BitbucketZdu.Core.LoadBalancers.AwsElb
{
    /// <summary>
    /// AWS Elastic Load Balancing (ALB and NLB target groups) through the ELBv2 Query API (Version 2015-12-01), signed
    /// with Signature Version 4. Members are the group's targets, named <c>id:port</c> (instance id or IP address).
    /// Take out = DeregisterTargets: the target reads <c>draining</c> for the group's deregistration delay, then it is
    /// gone (asked by name: <c>unused</c>, Target.NotRegistered). Put back = RegisterTargets: <c>initial</c> until the
    /// health checks pass, then <c>healthy</c>. Throttling and 5xx answers are retried with backoff.
    /// </summary>
    public sealed class AwsElbLoadBalancer : LoadBalancerBase
    {
        private const string Service = "elasticloadbalancing";
        private const string ApiVersion = "2015-12-01";
        private const int Retries = 5;
        private static readonly Regex ArnPattern = new Regex(@"^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$");

        private readonly HttpClient _http;
        private readonly Uri _endpoint;
        private readonly string _region;
        private readonly ResiliencePipeline<Reply> _retry;
        // Targets that must be listed even when deregistered: the Targets setting and every one this instance took out
        // (a deregistered target leaves DescribeTargetHealth's list, but a resumed run still needs to find it).
        private readonly HashSet<string> _known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

        private sealed class Reply
        {
            public Reply(int status, XElement? root, string? code, string? message) { Status = status; Root = root; Code = code; Message = message; }
            public int Status { get; }
            public XElement? Root { get; }
            public string? Code { get; }
            public string? Message { get; }
            public bool Retryable => Status >= 500 || Code is "Throttling" or "ThrottlingException" or "RequestLimitExceeded" or "ServiceUnavailable";
        }

        public AwsElbLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            _region = description.Endpoints[0].Trim();
            if (!Regex.IsMatch(_region, "^[a-z]{2}(-[a-z]+)+-\\d$"))
                throw new BbException("AwsInvalidRegion", BbErrorCategory.InvalidArgument,
                    $"'{_region}' is not an AWS region (e.g. eu-west-1): the endpoint of an AwsElb load balancer is the target group's region.", _region);
            var arn = ArnPattern.Match(description.Backend);
            if (!arn.Success)
                throw new BbException("AwsInvalidTargetGroup", BbErrorCategory.InvalidArgument,
                    $"'{description.Backend}' is not a target group ARN (arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>).", description.Backend);
            if (arn.Groups[1].Value != _region)
                throw new BbException("AwsInvalidTargetGroup", BbErrorCategory.InvalidArgument,
                    $"Target group {description.Backend} is in region {arn.Groups[1].Value}, not {_region}.", description.Backend);
            _endpoint = description.Options.TryGetValue("EndpointUrl", out var url) && !string.IsNullOrWhiteSpace(url)
                ? new Uri(url) : new Uri($"https://{Service}.{_region}.amazonaws.com/");
            if (description.Options.TryGetValue("Targets", out var targets))
                foreach (var t in targets.Split(',').Select(t => t.Trim()).Where(t => t.Length > 0)) _known.Add(Parse(t).Name);
            _http = LoadBalancerHttp.CreateClient(description, basicAuth: false);
            _retry = new ResiliencePipelineBuilder<Reply>().AddRetry(new RetryStrategyOptions<Reply>
            {
                MaxRetryAttempts = Retries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = description.MaxRetryDelay,
                ShouldHandle = args => new ValueTask<bool>(args.Outcome.Result?.Retryable == true),
            }).Build();
        }

        private static (string Name, string Id, int Port) Parse(string target)
        {
            var i = target.LastIndexOf(':');
            if (i <= 0 || !int.TryParse(target.Substring(i + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port < 1 || port > 65535)
                throw new BbException("AwsInvalidTarget", BbErrorCategory.InvalidArgument, $"'{target}' is not a target id:port (i-0abc123:7990 or 10.0.1.5:7990).", target);
            return (target.Substring(0, i) + ":" + port.ToString(CultureInfo.InvariantCulture), target.Substring(0, i), port);
        }

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            var all = await DescribeAsync(Array.Empty<string>(), cancellationToken).ConfigureAwait(false);
            var missing = _known.Where(k => !all.Any(m => string.Equals(m.Name, k, StringComparison.OrdinalIgnoreCase))).ToArray();
            if (missing.Length > 0) all.AddRange(await DescribeAsync(missing, cancellationToken).ConfigureAwait(false));
            return all;
        }

        public override async Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken)
        {
            var target = Parse(name);
            return (await DescribeAsync(new[] { target.Name }, cancellationToken).ConfigureAwait(false)).FirstOrDefault();
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            var target = Parse(member.Name);
            var now = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
            var registered = now is not null && now.State != MemberAdminState.Maintenance && now.State != MemberAdminState.Draining;
            if (state == MemberAdminState.Ready)
            {
                if (!registered) await CallAsync("RegisterTargets", Targets(target), cancellationToken).ConfigureAwait(false);
                var after = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
                return after is { State: MemberAdminState.Ready } ? after
                    : throw LoadBalancerErrors.VerifyFailed(Description, member.Name, state, after ?? member);
            }
            if (registered)
            {
                _known.Add(target.Name);
                await CallAsync("DeregisterTargets", Targets(target), cancellationToken).ConfigureAwait(false);
            }
            var read = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false) ?? member;
            if (read.State != MemberAdminState.Draining && read.State != MemberAdminState.Maintenance)
                throw LoadBalancerErrors.VerifyFailed(Description, member.Name, state, read);
            // ELB cannot cut a draining target short: past the drain timeout it stays 'draining' until the deregistration
            // delay ends, but it gets no new requests, which is what out of rotation means.
            return state == MemberAdminState.Maintenance && read.State == MemberAdminState.Draining
                ? new LoadBalancerMember(read.Name, read.Address, read.Backend, MemberAdminState.Maintenance, read.Health)
                { Status = read.Status + " (deregistration delay still running)", LoadBalancer = read.LoadBalancer, Instances = read.Instances }
                : read;
        }

        public override async Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var now = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
            var draining = now?.State == MemberAdminState.Draining;
            return new DrainStatus(!draining, null, $"{member.Name} is {now?.Status ?? "gone"}");
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => $"RegisterTargets {member.Name} in {Description.Backend}",
            MemberAdminState.Draining => $"DeregisterTargets {member.Name} from {Description.Backend} (draining for the group's deregistration delay)",
            _ => $"read back that {member.Name} is unused in {Description.Backend}",
        };

        private static IEnumerable<KeyValuePair<string, string>> Targets((string Name, string Id, int Port) t) => Targets(new[] { t });

        /// <summary>The Query API's list parameters: Targets.member.N.Id and .Port, N from 1.</summary>
        private static IEnumerable<KeyValuePair<string, string>> Targets(IEnumerable<(string Name, string Id, int Port)> targets) =>
            targets.SelectMany((t, i) => new[]
            {
                new KeyValuePair<string, string>($"Targets.member.{i + 1}.Id", t.Id),
                new KeyValuePair<string, string>($"Targets.member.{i + 1}.Port", t.Port.ToString(CultureInfo.InvariantCulture)),
            });

        private async Task<List<LoadBalancerMember>> DescribeAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
        {
            var root = await CallAsync("DescribeTargetHealth", Targets(names.Select(Parse)).ToList(), cancellationToken).ConfigureAwait(false);
            var list = new List<LoadBalancerMember>();
            foreach (var m in root.Descendants().Where(e => e.Name.LocalName == "TargetHealthDescriptions").Elements().Where(e => e.Name.LocalName == "member"))
            {
                string? Get(string parent, string child) => m.Elements().FirstOrDefault(e => e.Name.LocalName == parent)?.Elements().FirstOrDefault(e => e.Name.LocalName == child)?.Value;
                var id = Get("Target", "Id") ?? "";
                var port = Get("Target", "Port") ?? "";
                var s = Get("TargetHealth", "State") ?? "";
                var reason = Get("TargetHealth", "Reason");
                var (state, health) = s switch
                {
                    "healthy" => (MemberAdminState.Ready, MemberHealth.Up),
                    "initial" or "unhealthy" => (MemberAdminState.Ready, MemberHealth.Down),
                    "unavailable" => (MemberAdminState.Ready, MemberHealth.Unknown),
                    "draining" or "unhealthy.draining" => (MemberAdminState.Draining, MemberHealth.Unknown),
                    "unused" => (MemberAdminState.Maintenance, MemberHealth.Unknown),
                    _ => (MemberAdminState.Unknown, MemberHealth.Unknown),
                };
                list.Add(new LoadBalancerMember(id + ":" + port, id + ":" + port, Description.Backend, state, health)
                {
                    Status = reason is null ? s : $"{s} ({reason})",
                    LoadBalancer = Description.DisplayName,
                    Instances = new[] { _region },
                });
            }
            return list;
        }

        /// <summary>One signed Query API call; retried while throttled; an error answer becomes the matching ErrorId.</summary>
        private async Task<XElement> CallAsync(string action, IEnumerable<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
        {
            var form = new List<KeyValuePair<string, string>>
            {
                new("Action", action), new("Version", ApiVersion), new("TargetGroupArn", Description.Backend),
            };
            form.AddRange(parameters);
            var body = string.Join("&", form.Select(kv => AwsSigV4.Encode(kv.Key) + "=" + AwsSigV4.Encode(kv.Value)));
            var reply = await _retry.ExecuteAsync(async ct => await SendAsync(body, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            if (reply.Status >= 200 && reply.Status < 300 && reply.Root is not null) return reply.Root;
            var where = $"{_endpoint.GetLeftPart(UriPartial.Path)} {action}";
            var detail = $"{reply.Code ?? "HTTP " + reply.Status}: {reply.Message}";
            throw reply.Code switch
            {
                "TargetGroupNotFound" => LoadBalancerErrors.BackendNotFound(Description, $"{_region} ({reply.Message})"),
                "InvalidTarget" => new BbException("AwsInvalidTarget", BbErrorCategory.InvalidArgument, $"{where}: {detail} Nothing was changed.", Description.Backend),
                "AccessDenied" or "AccessDeniedException" or "UnauthorizedOperation" => LoadBalancerErrors.PermissionDenied(Description, "AwsAccessDenied", where,
                    $"{detail} The identity needs elasticloadbalancing:{action} on the target group."),
                "SignatureDoesNotMatch" or "InvalidClientTokenId" or "UnrecognizedClientException" or "ExpiredToken" or "IncompleteSignature" or "MissingAuthenticationToken" =>
                    new BbException("AwsAuthenticationFailed", BbErrorCategory.AuthenticationError, $"{where}: AWS refused the credentials ({detail}). Check the access key id, its secret and session token. Nothing was changed.", Description.EndpointText),
                "Throttling" or "ThrottlingException" or "RequestLimitExceeded" =>
                    new BbException("AwsThrottled", BbErrorCategory.LimitsExceeded, $"{where}: still throttled after {Retries + 1} attempts ({detail}). Try again later.", where),
                _ => LoadBalancerErrors.Protocol(Description, "AwsRequestFailed", where, detail),
            };
        }

        private async Task<Reply> SendAsync(string body, CancellationToken cancellationToken)
        {
            var (keyId, secret, session) = Credentials();
            var utc = DateTime.UtcNow;
            var headers = new Dictionary<string, string>
            {
                ["host"] = _endpoint.IsDefaultPort ? _endpoint.Host : _endpoint.Authority,
                ["content-type"] = "application/x-www-form-urlencoded; charset=utf-8",
                ["x-amz-date"] = utc.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture),
            };
            if (session is not null) headers["x-amz-security-token"] = session;
            var authorization = AwsSigV4.Authorization("POST", _endpoint.AbsolutePath, "", headers, body, utc, _region, Service, keyId, secret);
            using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new StringContent(body, Encoding.UTF8) };
            request.Content.Headers.Remove("Content-Type");
            request.Content.Headers.TryAddWithoutValidation("Content-Type", headers["content-type"]);
            request.Headers.TryAddWithoutValidation("X-Amz-Date", headers["x-amz-date"]);
            if (session is not null) request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", session);
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await LoadBalancerHttp.SendAsync(_http, request, Description, cancellationToken).ConfigureAwait(false);
            var text = response.Content is null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            XElement? root = null;
            try { root = text.Length == 0 ? null : XDocument.Parse(text).Root; } catch (System.Xml.XmlException) { }
            string? Find(string name) => root?.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
            var status = (int)response.StatusCode;
            if (status >= 200 && status < 300 && root is null)
                throw LoadBalancerErrors.Protocol(Description, "AwsUnexpectedReply", _endpoint.ToString(), $"HTTP {status} with a body that is not XML.");
            return status >= 200 && status < 300 ? new Reply(status, root, null, null) : new Reply(status, null, Find("Code"), Find("Message") ?? response.ReasonPhrase);
        }

        /// <summary>The credential given (user = access key id; password = secret access key, optionally a space and a session token), else AWS_* environment variables.</summary>
        private (string KeyId, string Secret, string? Session) Credentials()
        {
            if (!string.IsNullOrEmpty(Description.UserName) && Description.Password is not null)
            {
                var parts = LoadBalancerHttp.Reveal(Description.Password).Split(new[] { ' ' }, 2, StringSplitOptions.RemoveEmptyEntries);
                return (Description.UserName!, parts.Length > 0 ? parts[0] : "", parts.Length > 1 ? parts[1].Trim() : null);
            }
            var id = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
            var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
            if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret))
                throw new BbException("LoadBalancerMissingCredential", BbErrorCategory.AuthenticationError,
                    $"{Description.DisplayName}: no AWS credentials: pass an access key id and secret access key (-Credential, or -LoadBalancerCredential in a profile-driven upgrade), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials).", Description.EndpointText);
            var token = Environment.GetEnvironmentVariable("AWS_SESSION_TOKEN");
            return (id!, secret!, string.IsNullOrEmpty(token) ? null : token);
        }

        public override void Dispose() => _http.Dispose();
    }
}
