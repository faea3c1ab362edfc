using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.AzureAppGateway;

public sealed class AzureAppGatewayTests : IDisposable
{
    private readonly ArmStub _arm = new();

    private LoadBalancerDescription Describe(string pool = "bb-pool", string gateway = ArmStub.GatewayId) =>
        new(LoadBalancerKind.AzureAppGateway, new[] { gateway }, pool)
        {
            ManagementEndpoint = _arm.BaseUri,
            ImdsEndpoint = _arm.BaseUri,
            AuthorityEndpoint = _arm.BaseUri,
            IdentityEndpoint = null,
            AzureAuthentication = AzureAuthentication.ManagedIdentity,
            RequestTimeout = TimeSpan.FromSeconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(100),
        };

    private static LoadBalancerOptions Fast() => new() { HealthTimeout = TimeSpan.FromSeconds(10), PollInterval = TimeSpan.FromMilliseconds(50), MaxPollInterval = TimeSpan.FromMilliseconds(200) };

    [Fact]
    public async Task Remove_takes_the_address_out_with_If_Match_follows_the_operation_and_honours_connection_draining()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        var controller = new LoadBalancerController(lb);
        var removed = await controller.RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);

        Assert.True(removed.Changed);
        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.Equal(new[] { "10.0.0.12" }, _arm.PoolAddresses());
        Assert.Equal(new[] { "other.corp" }, _arm.OtherPoolAddresses()); // the rest of the gateway is untouched
        Assert.Contains(_arm.Log, l => l.StartsWith("PUT " + ArmStub.GatewayId, StringComparison.Ordinal) && l.EndsWith("W/\"etag-1\"", StringComparison.Ordinal));
        Assert.Contains(_arm.Log, l => l.Contains("/operations/op-"));
        Assert.False(removed.DrainTimedOut);
        Assert.InRange(removed.DrainDuration, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5)); // connectionDraining 1 s
    }

    [Fact]
    public async Task Add_puts_the_address_back_and_waits_until_backend_health_is_Up()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        var controller = new LoadBalancerController(lb);
        await controller.RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);
        _arm.HealthDownPolls = 4; // both addresses reported Down twice

        var added = await controller.AddAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);

        Assert.Equal(MemberAdminState.Ready, added.State);
        Assert.Equal(MemberHealth.Up, added.Health);
        Assert.Contains("10.0.0.11", _arm.PoolAddresses());
        Assert.True(_arm.Log.Count(l => l.Contains("/backendhealth/results/1")) >= 3, "backend health was polled until Up");
    }

    [Fact]
    public async Task Members_taken_out_stay_visible_to_later_runs_so_the_limit_of_members_out_holds()
    {
        using (var first = LoadBalancerFactory.Create(Describe()))
            await new LoadBalancerController(first).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);
        Assert.Equal("10.0.0.11", _arm.Tag("bitbucketzdu-out-bb-pool"));

        using var later = LoadBalancerFactory.Create(Describe());
        var members = await later.GetMembersAsync(CancellationToken.None);
        Assert.Equal(MemberAdminState.Maintenance, members.Single(m => m.Name == "10.0.0.11").State);
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(later).RemoveAsync("10.0.0.12", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("LoadBalancerTooManyMembersOut", ex.ErrorId);
        Assert.Equal(new[] { "10.0.0.12" }, _arm.PoolAddresses());

        await new LoadBalancerController(later).AddAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);
        Assert.Null(_arm.Tag("bitbucketzdu-out-bb-pool"));
    }

    [Fact]
    public async Task A_concurrent_edit_gets_412_and_is_re_read_not_overwritten()
    {
        _arm.ConcurrentEditBeforeNextPut = true;
        using var lb = LoadBalancerFactory.Create(Describe());
        await new LoadBalancerController(lb).RemoveAsync("10.0.0.12", Fast(), new TestHost(), CancellationToken.None);

        Assert.Equal(new[] { "10.0.0.11" }, _arm.PoolAddresses());
        Assert.Contains("added-by-someone-else.corp", _arm.OtherPoolAddresses());
        Assert.Equal(2, _arm.Log.Count(l => l.StartsWith("PUT ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Throttling_429_and_409_another_operation_in_progress_are_retried_after_Retry_After()
    {
        _arm.PutFaults.Enqueue(429);
        _arm.PutFaults.Enqueue(409);
        using var lb = LoadBalancerFactory.Create(Describe());
        await new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);
        Assert.Equal(new[] { "10.0.0.12" }, _arm.PoolAddresses());
        Assert.Equal(3, _arm.Log.Count(l => l.StartsWith("PUT ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_failed_long_running_operation_is_an_error_and_the_pool_is_unchanged()
    {
        _arm.FailNextOperation = true;
        using var lb = LoadBalancerFactory.Create(Describe());
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("AzureOperationFailed", ex.ErrorId);
        Assert.Contains("ApplicationGatewayBackendAddressPoolInvalid", ex.Message);
        Assert.Equal(new[] { "10.0.0.11", "10.0.0.12" }, _arm.PoolAddresses());
    }

    [Fact]
    public async Task An_expired_managed_identity_token_is_renewed_once()
    {
        _arm.FirstTokenExpired = true;
        using var lb = LoadBalancerFactory.Create(Describe());
        var members = await lb.GetMembersAsync(CancellationToken.None);
        Assert.Equal(2, members.Count);
        Assert.Equal(2, _arm.Log.Count(l => l.StartsWith("GET /metadata/identity/oauth2/token", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Every_ARM_and_token_request_is_reported_without_the_token_or_query()
    {
        var calls = new List<LoadBalancerCallRecord>();
        var d = Describe();
        d.AzureAuthentication = AzureAuthentication.ServicePrincipal;
        d.TenantId = "tenant-1";
        d.ClientId = "client-1";
        d.ClientSecret = Canary.Secure(Canary.Password);
        using var lb = LoadBalancerFactory.Create(d);
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            await new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None);

        // The token request (its form carries the client secret) is logged by method, path and status only.
        Assert.Contains(calls, c => c.Method == "POST" && c.Path!.EndsWith("/oauth2/v2.0/token", StringComparison.Ordinal) && c.Status == 200);
        Assert.Contains(calls, c => c.Method == "PUT" && c.Path == ArmStub.GatewayId && c.Status is 200 or 201);
        Assert.Contains(calls, c => c.Method == "GET" && c.Path!.Contains("/operations/op-", StringComparison.Ordinal));
        Assert.All(calls, c =>
        {
            Assert.Equal("AzureAppGateway", c.Provider);
            Assert.DoesNotContain("api-version", c.Path, StringComparison.Ordinal);
            Canary.AssertAbsent(c.Path + c.Host + c.Method + c.LoadBalancer, "a load-balancer call record");
        });
    }

    [Fact]
    public async Task An_expired_given_token_is_a_clear_error_that_never_shows_the_token()
    {
        _arm.ExpiredTokens.Add(Canary.Token);
        var d = Describe();
        d.AzureAuthentication = AzureAuthentication.Token;
        d.Token = Canary.Secure(Canary.Token);
        using var lb = LoadBalancerFactory.Create(d);
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("AzureTokenExpired", ex.ErrorId);
        Canary.AssertAbsent(ex.ToString(), "the error");
        Assert.Equal(2, _arm.PoolAddresses().Length);
    }

    [Fact]
    public async Task Automation_identity_endpoint_and_service_principal_tokens_work_and_secrets_stay_hidden()
    {
        var automation = Describe();
        automation.IdentityEndpoint = new Uri(_arm.BaseUri, "automation/identity");
        automation.IdentityHeader = Canary.Secure(_arm.IdentityHeader);
        using (var lb = LoadBalancerFactory.Create(automation))
            Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
        Assert.Contains(_arm.AllRequests, r => r.Contains("X-IDENTITY-HEADER=" + _arm.IdentityHeader, StringComparison.OrdinalIgnoreCase) && r.Contains("resource=https"));

        var sp = Describe();
        sp.AzureAuthentication = AzureAuthentication.ServicePrincipal;
        sp.TenantId = "contoso-tenant";
        sp.ClientId = "app-1";
        sp.ClientSecret = Canary.Secure(Canary.Password);
        var host = new TestHost();
        using (var lb = LoadBalancerFactory.Create(sp))
            await new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), host, CancellationToken.None);
        Assert.Contains(_arm.Log, l => l == "POST /contoso-tenant/oauth2/v2.0/token");
        Canary.AssertAbsent(host.AllText, "the host messages");
        Canary.AssertAbsent(string.Join("\n", _arm.AllRequests.Where(r => !r.Contains("/oauth2/v2.0/token"))), "requests other than the token request");

        sp.ClientSecret = Canary.Secure("wrong-secret");
        using (var lb = LoadBalancerFactory.Create(sp))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("AzureAuthenticationFailed", ex.ErrorId);
            Assert.Contains("AADSTS7000215", ex.Message);
            Assert.DoesNotContain("wrong-secret", ex.Message);
        }
    }

    [Fact]
    public async Task Missing_permission_wrong_pool_wrong_gateway_and_unreachable_give_clear_errors()
    {
        var d = Describe();
        d.AzureAuthentication = AzureAuthentication.Token;
        d.Token = Canary.Secure("reader-token");
        _arm.ForbiddenTokens.Add("reader-token");
        using (var lb = LoadBalancerFactory.Create(d))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.11", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("AzurePermissionDenied", ex.ErrorId);
            Assert.Contains("applicationGateways/write", ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(Describe(pool: "nope")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
            Assert.Contains("bb-pool", ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(Describe(gateway: ArmStub.GatewayId.Replace("gw-bb", "gw-missing"))))
            Assert.Equal("AzureGatewayNotFound", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        var unreachable = Describe();
        unreachable.AzureAuthentication = AzureAuthentication.Token;
        unreachable.Token = Canary.Secure("x");
        unreachable.ManagementEndpoint = new Uri($"http://127.0.0.1:{FreePort.Next()}/");
        using (var lb = LoadBalancerFactory.Create(unreachable))
            Assert.Equal("LoadBalancerUnreachable", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        Assert.Equal(2, _arm.PoolAddresses().Length);
        Assert.Single(_arm.Log, l => l.StartsWith("PUT ", StringComparison.Ordinal)); // only the refused one
    }

    public void Dispose() => _arm.Dispose();
}
