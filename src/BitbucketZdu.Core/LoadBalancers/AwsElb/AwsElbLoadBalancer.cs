using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Nodes;
using Polly;
using Polly.Retry;

namespace BitbucketZdu.Core.LoadBalancers.AwsElb
{
    /// <summary>
    /// AWS Elastic Load Balancing (ALB and NLB target groups) driven through the AWS CLI v2 (<c>aws elbv2 …
    /// --output json</c>), the way NGINX is driven by its own command: the CLI brings AWS's whole credential chain
    /// (environment, named profiles, SSO, container and instance roles) and signs every request; nothing here signs.
    /// Members are the group's targets, named <c>id:port</c> (instance id or IP address).
    /// Take out = deregister-targets: the target reads <c>draining</c> for the group's deregistration delay, then it is
    /// gone (asked by name: <c>unused</c>, Target.NotRegistered). Put back = register-targets: <c>initial</c> until the
    /// health checks pass, then <c>healthy</c>. Throttling and AWS's 5xx answers are retried here with backoff (the
    /// CLI's own retries are off: AWS_MAX_ATTEMPTS=1), so one place decides how long to wait.
    /// A credential given (access key id and secret) reaches the CLI through its environment only, never its command line.
    /// </summary>
    public sealed class AwsElbLoadBalancer : LoadBalancerBase
    {
        private const int Retries = 5;
        internal const string InstallHint = "Install the AWS CLI v2 (Debian/Ubuntu: 'apt-get install awscli'; elsewhere https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), or name it with the CliPath setting.";
        private static readonly Regex ArnPattern = new Regex(@"^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$");
        /// <summary>How the CLI reports an error answer: "An error occurred (Code) when calling the X operation (reached max retries: 0): message".</summary>
        private static readonly Regex CliError = new Regex(@"An error occurred \(([^)]+)\) when calling the (\w+) operation(?: \([^)]*\))?: (.*)", RegexOptions.Singleline);
        private static readonly Regex CliVersion = new Regex(@"aws-cli/(\d+)\.(\d+)\.(\d+)");
        /// <summary>CLIs whose version was read and found to be 2 or later (path → version), so each is checked once per process.</summary>
        private static readonly ConcurrentDictionary<string, string> CheckedClis = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);

        private readonly INodeShell _shell = new LocalShell();
        private readonly string _region;
        private readonly string _cli;
        private readonly string? _profile;
        private readonly string? _endpointUrl;
        private readonly ResiliencePipeline<Reply> _retry;
        // Targets that must be listed even when deregistered: the Targets setting and every one this instance took out
        // (a deregistered target leaves describe-target-health's list, but a resumed run still needs to find it).
        private readonly HashSet<string> _known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private string? _targetType;

        private sealed class Reply
        {
            public Reply(ShellResult result)
            {
                ExitCode = result.ExitCode;
                Output = result.StandardOutput;
                Error = result.StandardError.Trim();
                var m = CliError.Match(Error);
                if (m.Success) { Code = m.Groups[1].Value; Message = m.Groups[3].Value.Trim(); }
            }

            public int ExitCode { get; }
            public string Output { get; }
            public string Error { get; }
            /// <summary>AWS's error code, when AWS answered with an error.</summary>
            public string? Code { get; }
            public string? Message { get; }
            public bool Throttled => Code is "Throttling" or "ThrottlingException" or "RequestLimitExceeded" or "TooManyRequestsException";
            public bool Retryable => Throttled || Code is "ServiceUnavailable" or "InternalFailure" or "InternalError";
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
            _endpointUrl = Option("EndpointUrl");
            _profile = Option("Profile");
            _cli = Option("CliPath") ?? "aws";
            // An explicit --profile turns the CLI's environment credentials off: a credential given would silently not be used.
            if (_profile is not null && description.Password is not null)
                throw new BbException("LoadBalancerCredentialNotUsed", BbErrorCategory.InvalidArgument,
                    $"{description.DisplayName}: takes a credential or a named profile (Profile = '{_profile}'), not both: with --profile the AWS CLI ignores access keys in its environment. Remove one.", _profile);
            if (Option("Targets") is string targets)
                foreach (var t in targets.Split(',').Select(t => t.Trim()).Where(t => t.Length > 0)) _known.Add(Parse(t).Name);
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

        private string? Option(string name) =>
            Description.Options.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

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
            await CheckTargetTypeAsync(target, cancellationToken).ConfigureAwait(false);
            var now = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
            var registered = now is not null && now.State != MemberAdminState.Maintenance && now.State != MemberAdminState.Draining;
            if (state == MemberAdminState.Ready)
            {
                if (!registered) await CallAsync("register-targets", TargetArguments(new[] { target }), cancellationToken).ConfigureAwait(false);
                var after = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
                return after is { State: MemberAdminState.Ready } ? after
                    : throw LoadBalancerErrors.VerifyFailed(Description, member.Name, state, after ?? member);
            }
            if (registered)
            {
                _known.Add(target.Name);
                await CallAsync("deregister-targets", TargetArguments(new[] { target }), cancellationToken).ConfigureAwait(false);
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

        /// <summary>
        /// Before a change: the group exists (describe-target-groups) and the target's form fits its target type (an
        /// instance id for 'instance', an IP address for 'ip'), so a wrong target is refused before anything changes.
        /// </summary>
        private async Task CheckTargetTypeAsync((string Name, string Id, int Port) target, CancellationToken cancellationToken)
        {
            if (_targetType is null)
            {
                var root = await CallAsync("describe-target-groups", new[] { "--target-group-arns", Description.Backend }, cancellationToken).ConfigureAwait(false);
                var group = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("TargetGroups", out var groups) && groups.ValueKind == JsonValueKind.Array ? groups.EnumerateArray().FirstOrDefault() : default;
                if (group.ValueKind != JsonValueKind.Object)
                    throw LoadBalancerErrors.BackendNotFound(Description, Where("describe-target-groups"));
                _targetType = group.TryGetProperty("TargetType", out var type) ? type.GetString() ?? "" : "";
            }
            var isIp = IPAddress.TryParse(target.Id, out _);
            var fits = _targetType switch
            {
                "instance" => target.Id.StartsWith("i-", StringComparison.Ordinal),
                "ip" => isIp,
                _ => true,
            };
            if (!fits)
                throw new BbException("AwsInvalidTarget", BbErrorCategory.InvalidArgument,
                    $"{target.Name} is not a target of {Description.Backend}: the group's target type is '{_targetType}' ({(_targetType == "ip" ? "an IP address" : "an instance id i-…")}:port). Nothing was changed.", target.Name);
        }

        public override async Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var now = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false);
            var draining = now?.State == MemberAdminState.Draining;
            return new DrainStatus(!draining, null, $"{member.Name} is {now?.Status ?? "gone"}");
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => $"aws elbv2 register-targets {member.Name} in {Description.Backend}",
            MemberAdminState.Draining => $"aws elbv2 deregister-targets {member.Name} from {Description.Backend} (draining for the group's deregistration delay)",
            _ => $"read back that {member.Name} is unused in {Description.Backend}",
        };

        /// <summary>--target-group-arn and, when targets are named, --targets as JSON ([{"Id":…,"Port":…}]).</summary>
        private IEnumerable<string> TargetArguments(IReadOnlyList<(string Name, string Id, int Port)> targets)
        {
            yield return "--target-group-arn";
            yield return Description.Backend;
            if (targets.Count == 0) yield break;
            yield return "--targets";
            yield return "[" + string.Join(",", targets.Select(t => "{\"Id\":" + JsonSerializer.Serialize(t.Id) + ",\"Port\":" + t.Port.ToString(CultureInfo.InvariantCulture) + "}")) + "]";
        }

        private async Task<List<LoadBalancerMember>> DescribeAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
        {
            var root = await CallAsync("describe-target-health", TargetArguments(names.Select(Parse).ToList()), cancellationToken).ConfigureAwait(false);
            var list = new List<LoadBalancerMember>();
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("TargetHealthDescriptions", out var rows) || rows.ValueKind != JsonValueKind.Array)
                throw LoadBalancerErrors.Protocol(Description, "AwsUnexpectedReply", Where("describe-target-health"), "the CLI's JSON has no TargetHealthDescriptions list.");
            foreach (var row in rows.EnumerateArray())
            {
                static string? Get(JsonElement e, string parent, string child) =>
                    e.TryGetProperty(parent, out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty(child, out var c)
                        ? (c.ValueKind == JsonValueKind.Number ? c.GetRawText() : c.GetString()) : null;
                var id = Get(row, "Target", "Id") ?? "";
                var port = Get(row, "Target", "Port") ?? "";
                var s = Get(row, "TargetHealth", "State") ?? "";
                var reason = Get(row, "TargetHealth", "Reason");
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

        private string Where(string operation) => $"aws elbv2 {operation} ({_endpointUrl ?? _region})";

        private string Quote(string word) => ShellQuote.For(_shell.Platform, word);

        /// <summary>The CLI's own timeouts are the request timeout; the process also gets time to start (Python, on a loaded host).</summary>
        private TimeSpan ProcessTimeout => Description.RequestTimeout + TimeSpan.FromSeconds(60);

        /// <summary>One CLI call; retried while throttled; an error becomes the matching ErrorId with AWS's own message.</summary>
        private async Task<JsonElement> CallAsync(string operation, IEnumerable<string> arguments, CancellationToken cancellationToken)
        {
            await CheckCliAsync(cancellationToken).ConfigureAwait(false);
            var seconds = Math.Max(1, (int)Math.Ceiling(Description.RequestTimeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            var sb = new StringBuilder(_shell.Platform == ShellPlatform.Windows ? "& " : "").Append(Quote(_cli)).Append(" elbv2 ").Append(operation);
            foreach (var a in arguments) sb.Append(' ').Append(Quote(a));
            sb.Append(" --region ").Append(Quote(_region));
            if (_profile is not null) sb.Append(" --profile ").Append(Quote(_profile));
            if (_endpointUrl is not null) sb.Append(" --endpoint-url ").Append(Quote(_endpointUrl));
            if (Description.SkipCertificateCheck) sb.Append(" --no-verify-ssl");
            sb.Append(" --cli-connect-timeout ").Append(seconds).Append(" --cli-read-timeout ").Append(seconds).Append(" --output json --no-cli-pager");
            var command = sb.ToString();
            var reply = await _retry.ExecuteAsync(async ct => await RunAsync(command, operation, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            if (reply.ExitCode != 0) throw Error(operation, reply);
            if (reply.Output.Trim().Length == 0) return default; // register/deregister answer nothing
            try
            {
                using var doc = JsonDocument.Parse(reply.Output);
                return doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                throw LoadBalancerErrors.Protocol(Description, "AwsUnexpectedReply", Where(operation), $"the CLI's output is not JSON: {LoadBalancerDiagnostics.Summarize(reply.Output)}");
            }
        }

        private async Task<Reply> RunAsync(string command, string operation, CancellationToken cancellationToken)
        {
            var watch = Stopwatch.StartNew();
            try
            {
                var reply = new Reply(await _shell.RunAsync(command, ProcessTimeout, cancellationToken, ChildEnvironment()).ConfigureAwait(false));
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Process, _shell.HostName, command,
                    reply.ExitCode == 0 ? "ok" : $"exit {reply.ExitCode}: {LoadBalancerDiagnostics.Summarize(reply.Error)}", watch, null);
                return reply;
            }
            catch (TimeoutException ex)
            {
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Process, _shell.HostName, command, null, watch, ex);
                throw LoadBalancerErrors.Unreachable(Description, Where(operation), ex);
            }
        }

        /// <summary>
        /// The child's environment: no CLI retries or pager or prompt, and the credential given (if any) as the CLI's
        /// environment credentials, the session-token variables emptied when it has none so a stale one is not sent.
        /// </summary>
        private IReadOnlyDictionary<string, string> ChildEnvironment()
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["AWS_MAX_ATTEMPTS"] = "1",
                ["AWS_RETRY_MODE"] = "standard",
                ["AWS_PAGER"] = "",
                ["AWS_CLI_AUTO_PROMPT"] = "off",
            };
            if (!string.IsNullOrEmpty(Description.UserName) && Description.Password is not null)
            {
                var parts = LoadBalancerHttp.Reveal(Description.Password).Split(new[] { ' ' }, 2, StringSplitOptions.RemoveEmptyEntries);
                env["AWS_ACCESS_KEY_ID"] = Description.UserName!;
                env["AWS_SECRET_ACCESS_KEY"] = parts.Length > 0 ? parts[0] : "";
                env["AWS_SESSION_TOKEN"] = parts.Length > 1 ? parts[1].Trim() : "";
                env["AWS_SECURITY_TOKEN"] = "";
                env["AWS_CREDENTIAL_EXPIRATION"] = "";
            }
            return env;
        }

        /// <summary>Reads '<c>aws --version</c>' once per CLI: missing → AwsCliNotFound, version 1 (or no version) → AwsCliUnsupported.</summary>
        private async Task CheckCliAsync(CancellationToken cancellationToken)
        {
            if (CheckedClis.ContainsKey(_cli)) return;
            var command = (_shell.Platform == ShellPlatform.Windows ? "& " : "") + Quote(_cli) + " --version";
            var watch = Stopwatch.StartNew();
            ShellResult r;
            try
            {
                r = await _shell.RunAsync(command, ProcessTimeout, cancellationToken, ChildEnvironment()).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                throw new BbException("AwsCliUnsupported", BbErrorCategory.OperationTimeout, $"'{_cli} --version' did not finish within {ProcessTimeout.TotalSeconds:0} s. {InstallHint}", _cli, ex);
            }
            var text = (r.StandardOutput + " " + r.StandardError).Trim();
            LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Process, _shell.HostName, command, r.ExitCode == 0 ? LoadBalancerDiagnostics.Summarize(text) : $"exit {r.ExitCode}: {LoadBalancerDiagnostics.Summarize(text)}", watch, null);
            if (r.ExitCode == 127 || r.ExitCode == 126 || (_shell.Platform == ShellPlatform.Windows && text.IndexOf("is not recognized", StringComparison.OrdinalIgnoreCase) >= 0))
                throw new BbException("AwsCliNotFound", BbErrorCategory.NotInstalled,
                    $"{Description.DisplayName}: the AWS CLI '{_cli}' cannot be run on {_shell.HostName} ({LoadBalancerDiagnostics.Summarize(text)}). {InstallHint} Nothing was changed.", _cli);
            var m = CliVersion.Match(text);
            if (r.ExitCode != 0 || !m.Success)
                throw new BbException("AwsCliUnsupported", BbErrorCategory.NotInstalled,
                    $"{Description.DisplayName}: '{_cli} --version' did not name an AWS CLI version (exit {r.ExitCode}: {LoadBalancerDiagnostics.Summarize(text)}). {InstallHint} Nothing was changed.", _cli);
            if (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) < 2)
                throw new BbException("AwsCliUnsupported", BbErrorCategory.NotInstalled,
                    $"{Description.DisplayName}: '{_cli}' is {m.Value}, the AWS CLI version 1; AwsElb needs version 2. {InstallHint} Nothing was changed.", _cli);
            CheckedClis[_cli] = m.Value;
        }

        private BbException Error(string operation, Reply reply)
        {
            var where = Where(operation);
            var detail = reply.Code is null ? LoadBalancerDiagnostics.Summarize(reply.Error) : $"{reply.Code}: {reply.Message}";
            if (reply.Code is null)
            {
                if (reply.ExitCode == 127 || reply.ExitCode == 126)
                    return new BbException("AwsCliNotFound", BbErrorCategory.NotInstalled, $"{Description.DisplayName}: the AWS CLI '{_cli}' cannot be run ({detail}). {InstallHint} Nothing was changed.", _cli);
                if (reply.Error.IndexOf("Unable to locate credentials", StringComparison.Ordinal) >= 0)
                    return new BbException("LoadBalancerMissingCredential", BbErrorCategory.AuthenticationError,
                        $"{where}: the AWS CLI found no credentials ({detail}) Pass an access key id and secret access key (-Credential, or -LoadBalancerCredential in a profile-driven upgrade), name a CLI profile (the Profile setting), or give the CLI its own (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, 'aws configure', 'aws sso login', an instance role). Nothing was changed.", Description.EndpointText);
                var profile = Regex.Match(reply.Error, @"The config profile \((.*)\) could not be found");
                if (profile.Success)
                    return new BbException("AwsInvalidProfile", BbErrorCategory.InvalidArgument,
                        $"{where}: {detail}. Name a profile of the AWS CLI's config (aws configure list-profiles), or remove the Profile setting. Nothing was changed.", profile.Groups[1].Value);
                if (reply.Error.IndexOf("Could not connect to the endpoint URL", StringComparison.Ordinal) >= 0
                    || reply.Error.IndexOf("Connect timeout on endpoint URL", StringComparison.Ordinal) >= 0
                    || reply.Error.IndexOf("Read timeout on endpoint URL", StringComparison.Ordinal) >= 0)
                    return LoadBalancerErrors.Unreachable(Description, where, new InvalidOperationException(detail + "."));
                if (Regex.IsMatch(reply.Error, "(SSO|[Tt]oken).*(expired|refresh)|[Ee]rror loading SSO Token"))
                    return new BbException("AwsAuthenticationFailed", BbErrorCategory.AuthenticationError, $"{where}: {detail} (for an SSO profile: aws sso login). Nothing was changed.", Description.EndpointText);
                return LoadBalancerErrors.Protocol(Description, "AwsRequestFailed", where, $"exit {reply.ExitCode}: {detail}");
            }
            return reply.Code switch
            {
                "TargetGroupNotFound" => LoadBalancerErrors.BackendNotFound(Description, $"{_region} ({reply.Message})"),
                "InvalidTarget" => new BbException("AwsInvalidTarget", BbErrorCategory.InvalidArgument, $"{where}: {detail} Nothing was changed.", Description.Backend),
                "AccessDenied" or "AccessDeniedException" or "UnauthorizedOperation" => LoadBalancerErrors.PermissionDenied(Description, "AwsAccessDenied", where,
                    $"{detail} The identity needs elasticloadbalancing:{ActionOf(operation)} on the target group."),
                "SignatureDoesNotMatch" or "InvalidClientTokenId" or "UnrecognizedClientException" or "ExpiredToken" or "ExpiredTokenException" or "IncompleteSignature" or "MissingAuthenticationToken" or "AuthFailure" =>
                    new BbException("AwsAuthenticationFailed", BbErrorCategory.AuthenticationError, $"{where}: AWS refused the credentials ({detail}). Check the access key id, its secret and session token, or the CLI profile. Nothing was changed.", Description.EndpointText),
                _ when reply.Throttled =>
                    new BbException("AwsThrottled", BbErrorCategory.LimitsExceeded, $"{where}: still throttled after {Retries + 1} attempts ({detail}). Try again later.", where),
                _ => LoadBalancerErrors.Protocol(Description, "AwsRequestFailed", where, detail),
            };
        }

        /// <summary>deregister-targets → DeregisterTargets (the IAM action's name).</summary>
        private static string ActionOf(string operation) =>
            string.Concat(operation.Split('-').Select(p => char.ToUpperInvariant(p[0]) + p.Substring(1)));

        public override void Dispose() => _shell.Dispose();
    }
}
