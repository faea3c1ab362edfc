using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

public sealed class AwsElbTests : IDisposable
{
    private const string T1 = "10.0.0.11:7990";
    private const string T2 = "10.0.0.12:7990";
    private readonly ElbStub _stub = new(Canary.Password, T1, T2);

    public void Dispose() => _stub.Dispose();

    private LoadBalancerDescription Describe(string? secret = null, string? arn = null)
    {
        var d = new LoadBalancerDescription(LoadBalancerKind.AwsElb, new[] { ElbStub.Region }, arn ?? _stub.TargetGroupArn)
        {
            RequestTimeout = TimeSpan.FromSeconds(30), UserName = ElbStub.AccessKeyId, Password = Canary.Secure(secret ?? Canary.Password),
            MaxRetryDelay = TimeSpan.FromMilliseconds(300),
        };
        d.Options["EndpointUrl"] = _stub.Url;
        return d;
    }

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(20), HealthTimeout = TimeSpan.FromSeconds(20), PollInterval = TimeSpan.FromMilliseconds(20), MaxPollInterval = TimeSpan.FromMilliseconds(100) };

    [Fact]
    public async Task Remove_deregisters_and_waits_while_draining_until_unused_and_add_registers_and_waits_for_healthy()
    {
        _stub.DeregistrationDelay = TimeSpan.FromMilliseconds(1200);
        var calls = new List<LoadBalancerCallRecord>();
        using var lb = LoadBalancerFactory.Create(Describe());
        var controller = new LoadBalancerController(lb);
        var host = new TestHost();
        var members = await lb.GetMembersAsync(CancellationToken.None);
        Assert.Equal(new[] { T1, T2 }, members.Select(m => m.Name).OrderBy(n => n));
        Assert.All(members, m => Assert.Equal((MemberAdminState.Ready, MemberHealth.Up), (m.State, m.Health)));

        LoadBalancerChangeResult removed;
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            removed = await controller.RemoveAsync(T1, Fast(), host, CancellationToken.None);
        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.False(removed.DrainTimedOut);
        Assert.Equal(0, removed.ConnectionsCut);
        Assert.True(removed.DrainDuration >= TimeSpan.FromMilliseconds(900), $"the drain waited out the deregistration delay ({removed.DrainDuration.TotalMilliseconds:0} ms)");
        Assert.Equal("unused", _stub.Get(T1)!.State);
        Assert.Contains("DeregisterTargets", _stub.Calls);
        // Gone from the group's list, yet still listed (as out) by the provider that took it out.
        Assert.Contains(await lb.GetMembersAsync(CancellationToken.None), m => m.Name == T1 && m.State == MemberAdminState.Maintenance && m.Status!.Contains("Target.NotRegistered"));

        _stub.InitialFor = TimeSpan.FromMilliseconds(600);
        var added = await controller.AddAsync(T1, Fast(), host, CancellationToken.None);
        Assert.Equal((MemberAdminState.Ready, MemberHealth.Up), (added.State, added.Health));
        Assert.True(added.HealthWait >= TimeSpan.FromMilliseconds(400), $"add waited while the target was initial ({added.HealthWait.TotalMilliseconds:0} ms)");
        Assert.Equal("healthy", _stub.Get(T1)!.State);

        Canary.AssertAbsent(host.AllText, "the host messages");
        Canary.AssertAbsent(string.Join("\n", calls.Select(c => c.ToString())), "the call records");
        Canary.AssertAbsent(string.Join("\n", _stub.AllRequests), "the requests (the secret only signs, it is never sent)");
        Assert.All(_stub.AllRequests, r => Assert.Contains("Authorization=AWS4-HMAC-SHA256 Credential=" + ElbStub.AccessKeyId, r, StringComparison.Ordinal));
        Assert.DoesNotContain(_stub.AllRequests, r => r.Contains("Basic ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Throttling_is_retried_with_backoff_and_persistent_throttling_is_a_clear_error()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        _stub.ThrottleNext = 2;
        Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
        Assert.Equal(3, _stub.Calls.Count);

        _stub.ThrottleNext = 100;
        var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
        Assert.Equal("AwsThrottled", ex.ErrorId);
        Assert.Contains("Rate exceeded", ex.Message);
    }

    [Fact]
    public async Task Access_denied_unknown_target_group_unknown_target_and_a_wrong_secret_are_clear_errors_and_change_nothing()
    {
        using (var lb = LoadBalancerFactory.Create(Describe()))
        {
            _stub.Denied.Add("DeregisterTargets");
            var host = new TestHost();
            var denied = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(T1, Fast(), host, CancellationToken.None));
            Assert.True(denied.ErrorId == "AwsAccessDenied", denied.ErrorId + ": " + denied.Message);
            Assert.Contains("elasticloadbalancing:DeregisterTargets", denied.Message);
            Assert.Equal("healthy", _stub.Get(T1)!.State);

            var unknownTarget = await Assert.ThrowsAsync<BbException>(() => lb.FindMemberAsync("i-0nothere:7990", CancellationToken.None));
            Assert.Equal("AwsInvalidTarget", unknownTarget.ErrorId);
        }

        var otherArn = _stub.TargetGroupArn.Replace("bitbucket-http", "other");
        using (var lb = LoadBalancerFactory.Create(Describe(arn: otherArn)))
            Assert.Equal("LoadBalancerBackendNotFound", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);

        using (var lb = LoadBalancerFactory.Create(Describe(secret: "not-the-secret")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("AwsAuthenticationFailed", ex.ErrorId);
            Assert.Contains("SignatureDoesNotMatch", ex.Message);
        }
        Assert.DoesNotContain("DeregisterTargets", _stub.Calls.Where(c => c != "DescribeTargetHealth").Skip(1));
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
