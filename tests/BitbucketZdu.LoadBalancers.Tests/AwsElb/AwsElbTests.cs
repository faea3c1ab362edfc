using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>The AwsElb provider driving the real AWS CLI v2 against the ELBv2 stub (which checks each request's signature).</summary>
public sealed class AwsElbTests : IDisposable
{
    private const string T1 = "10.0.0.11:7990";
    private const string T2 = "10.0.0.12:7990";
    private readonly ElbStub _stub = new(Canary.Password, T1, T2);

    public void Dispose() => _stub.Dispose();

    private LoadBalancerDescription Describe(string? secret = null, string? arn = null, string? cli = null, bool credential = true)
    {
        var d = new LoadBalancerDescription(LoadBalancerKind.AwsElb, new[] { ElbStub.Region }, arn ?? _stub.TargetGroupArn)
        {
            RequestTimeout = TimeSpan.FromSeconds(30), MaxRetryDelay = TimeSpan.FromMilliseconds(300),
        };
        if (credential) (d.UserName, d.Password) = (ElbStub.AccessKeyId, Canary.Secure(secret ?? Canary.Password));
        d.Options["EndpointUrl"] = _stub.Url;
        d.Options["CliPath"] = cli ?? AwsCli.Isolated;
        return d;
    }

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(60), HealthTimeout = TimeSpan.FromSeconds(60), PollInterval = TimeSpan.FromMilliseconds(20), MaxPollInterval = TimeSpan.FromMilliseconds(100) };

    [Fact]
    public async Task Remove_deregisters_and_waits_while_draining_until_unused_and_add_registers_and_waits_for_healthy()
    {
        _stub.DeregistrationDelay = TimeSpan.FromMilliseconds(1200);
        var calls = new List<LoadBalancerCallRecord>();
        var argsLog = Path.Combine(Path.GetTempPath(), "bbzdu-awsargs-" + Guid.NewGuid().ToString("N") + ".log");
        // The wrapper records each command line and whether the secret arrived in the environment, then runs the real CLI.
        var cli = AwsCli.Wrapper(before: $"echo \"$* secret-in-env=${{AWS_SECRET_ACCESS_KEY:+yes}}\" >> '{argsLog}'");
        using var lb = LoadBalancerFactory.Create(Describe(cli: cli));
        var controller = new LoadBalancerController(lb);
        var host = new TestHost();
        var members = await lb.GetMembersAsync(CancellationToken.None);
        Assert.Equal(new[] { T1, T2 }, members.Select(m => m.Name).OrderBy(n => n));
        Assert.All(members, m => Assert.Equal((MemberAdminState.Ready, MemberHealth.Up, "healthy"), (m.State, m.Health, m.Status)));

        LoadBalancerChangeResult removed;
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            removed = await controller.RemoveAsync(T1, Fast(), host, CancellationToken.None);
        var returned = DateTimeOffset.UtcNow;
        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.False(removed.DrainTimedOut);
        // Returned only once the stub's delay (counted from the deregister call, inside the CLI run) had passed; the
        // drain part alone starts after the CLI process ended, which under load is hundreds of ms later.
        Assert.True(returned - _stub.Get(T1)!.Since >= _stub.DeregistrationDelay,
            $"the removal waited out the deregistration delay (returned {(returned - _stub.Get(T1)!.Since).TotalMilliseconds:0} ms after the deregistration)");
        Assert.Equal("unused", _stub.Get(T1)!.State);
        Assert.Contains("DeregisterTargets", _stub.Calls);
        Assert.Contains(calls, c => c.Kind == LoadBalancerCallKind.Process && c.Command!.Contains("elbv2 deregister-targets", StringComparison.Ordinal) && c.Result == "ok");
        // Gone from the group's list, yet still listed (as out, with AWS's reason code) by the provider that took it out.
        Assert.Contains(await lb.GetMembersAsync(CancellationToken.None), m => m.Name == T1 && m.State == MemberAdminState.Maintenance && m.Status == "unused (Target.NotRegistered)");

        _stub.InitialFor = TimeSpan.FromMilliseconds(600);
        var added = await controller.AddAsync(T1, Fast(), host, CancellationToken.None);
        Assert.Equal((MemberAdminState.Ready, MemberHealth.Up), (added.State, added.Health));
        Assert.Equal("healthy", _stub.Get(T1)!.State);
        Assert.Contains("RegisterTargets", _stub.Calls);

        var lines = File.ReadAllLines(argsLog);
        Assert.Contains(lines, l => l.StartsWith("elbv2 deregister-targets --target-group-arn " + _stub.TargetGroupArn, StringComparison.Ordinal) && l.Contains("--no-cli-pager", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.EndsWith("secret-in-env=yes", l, StringComparison.Ordinal));
        Canary.AssertAbsent(string.Join("\n", lines), "the CLI's command lines");
        Canary.AssertAbsent(host.AllText, "the host messages");
        Canary.AssertAbsent(string.Join("\n", calls.Select(c => c.Command + " " + c.Result)), "the call records");
        Canary.AssertAbsent(string.Join("\n", _stub.AllRequests), "the requests (the secret only signs, it is never sent)");
        Assert.All(_stub.AllRequests, r => Assert.Contains("Authorization=AWS4-HMAC-SHA256 Credential=" + ElbStub.AccessKeyId, r, StringComparison.Ordinal));
        File.Delete(argsLog);
    }

    [Fact]
    public async Task Throttling_is_retried_with_backoff_beyond_the_clis_own_attempts_and_persistent_throttling_is_a_clear_error()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        // Three throttled answers, then success: more than the CLI's default three attempts, so the retries are ours.
        _stub.ThrottleNext = 3;
        Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
        Assert.Equal(4, _stub.Calls.Count);

        _stub.ThrottleNext = 100;
        var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
        Assert.Equal("AwsThrottled", ex.ErrorId);
        Assert.Contains("Throttling: Rate exceeded", ex.Message);
        Assert.Equal(4 + 6, _stub.Calls.Count);
    }

    [Fact]
    public async Task Access_denied_unknown_group_or_target_a_wrong_target_type_and_a_wrong_secret_are_clear_errors_and_change_nothing()
    {
        using (var lb = LoadBalancerFactory.Create(Describe()))
        {
            _stub.Denied.Add("DeregisterTargets");
            var host = new TestHost();
            var denied = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(T1, Fast(), host, CancellationToken.None));
            Assert.True(denied.ErrorId == "AwsAccessDenied", denied.ErrorId + ": " + denied.Message);
            Assert.Contains("is not authorized to perform: elasticloadbalancing:DeregisterTargets", denied.Message); // AWS's own words
            Assert.Contains("The identity needs elasticloadbalancing:DeregisterTargets", denied.Message);
            Assert.Equal("healthy", _stub.Get(T1)!.State);

            var unknownTarget = await Assert.ThrowsAsync<BbException>(() => lb.FindMemberAsync("10.9.9.9:7990", CancellationToken.None));
            Assert.Equal("AwsInvalidTarget", unknownTarget.ErrorId);
            Assert.Contains("not in a running state", unknownTarget.Message);
        }

        _stub.TargetType = "instance";
        using (var lb = LoadBalancerFactory.Create(Describe()))
        {
            var wrongType = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(T2, Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("AwsInvalidTarget", wrongType.ErrorId);
            Assert.Contains("target type is 'instance'", wrongType.Message);
        }

        var otherArn = _stub.TargetGroupArn.Replace("bitbucket-http", "other");
        using (var lb = LoadBalancerFactory.Create(Describe(arn: otherArn)))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
            Assert.Contains("One or more target groups not found", ex.Message);
        }

        using (var lb = LoadBalancerFactory.Create(Describe(secret: "not-the-secret")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("AwsAuthenticationFailed", ex.ErrorId);
            Assert.Contains("SignatureDoesNotMatch", ex.Message);
        }
        Assert.Equal(1, _stub.Calls.Count(c => c == "DeregisterTargets")); // the one refused
        Assert.DoesNotContain("RegisterTargets", _stub.Calls);
        Assert.All(new[] { T1, T2 }, t => Assert.Equal("healthy", _stub.Get(t)!.State));
    }

    [Fact]
    public async Task Temporary_credentials_send_the_session_token_signed()
    {
        _stub.SessionToken = "FwoGZXIvYXdzEXAMPLETOKEN";
        using (var lb = LoadBalancerFactory.Create(Describe()))
            Assert.Equal("AwsAuthenticationFailed", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        using (var lb = LoadBalancerFactory.Create(Describe(secret: Canary.Password + " " + _stub.SessionToken)))
            Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_missing_cli_or_a_version_1_cli_is_a_clear_error_before_anything_is_asked()
    {
        using (var lb = LoadBalancerFactory.Create(Describe(cli: "/nonexistent/bin/aws")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("AwsCliNotFound", ex.ErrorId);
            Assert.Contains("apt-get install awscli", ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(Describe(cli: AwsCli.Fake("aws-cli/1.45.11 Python/3.11.7 Linux/6.1 botocore/1.43.11"))))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("AwsCliUnsupported", ex.ErrorId);
            Assert.Contains("aws-cli/1.45.11", ex.Message);
            Assert.Contains("version 2", ex.Message);
        }
        Assert.Empty(_stub.Calls);
    }

    [Fact]
    public async Task An_endpoint_that_does_not_answer_is_unreachable_with_the_clis_words()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        var d = Describe();
        d.Options["EndpointUrl"] = $"http://127.0.0.1:{port}/";
        using var lb = LoadBalancerFactory.Create(d);
        var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
        Assert.Equal("LoadBalancerUnreachable", ex.ErrorId);
        Assert.Contains("Could not connect to the endpoint URL", ex.Message);
    }

    [Theory]
    [InlineData("elb-west", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/bb/73e2d6bc24d8a067", "AwsInvalidRegion")]
    [InlineData("eu-west-1", "bitbucket-http", "AwsInvalidTargetGroup")]
    [InlineData("us-east-1", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/bb/73e2d6bc24d8a067", "AwsInvalidTargetGroup")]
    public void A_region_or_target_group_arn_that_cannot_be_right_is_refused_when_described(string region, string arn, string errorId)
    {
        var ex = Assert.Throws<BbException>(() => LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.AwsElb, new[] { region }, arn)));
        Assert.Equal(errorId, ex.ErrorId);
    }
}
