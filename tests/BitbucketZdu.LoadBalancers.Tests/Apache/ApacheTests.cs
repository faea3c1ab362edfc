using System.Net.Http.Headers;
using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.Apache;

public sealed class ApacheTests : IClassFixture<ApacheFixture>, IAsyncLifetime
{
    private readonly ApacheFixture _fx;
    private readonly ITestOutputHelper _output;

    public ApacheTests(ApacheFixture fx, ITestOutputHelper output)
    {
        _fx = fx;
        _output = output;
    }

    public Task InitializeAsync() => _fx.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(10), HealthTimeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Drain_under_load_loses_no_request_and_the_member_gets_traffic_again()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        await DrainUnderLoad.RunAsync("Apache", new LoadBalancerController(lb), _fx.Member1, _fx.Node1, _fx.Node2, _fx.Frontend, _output);
    }

    [Fact]
    public async Task Every_balancer_manager_request_is_reported_with_method_path_status_and_time_but_no_nonce()
    {
        var calls = new List<LoadBalancerCallRecord>();
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            await new LoadBalancerController(lb).RemoveAsync(_fx.Member1, Fast(), new TestHost(), CancellationToken.None);

        Assert.All(calls, c =>
        {
            Assert.Equal(LoadBalancerCallKind.Http, c.Kind);
            Assert.Equal("Apache", c.Provider);
            Assert.Equal(new Uri(_fx.Manager).AbsolutePath, c.Path);   // no query string: no nonce, no member names
            Assert.Equal(200, c.Status);
            Assert.True(c.Elapsed >= TimeSpan.Zero);
        });
        Assert.Contains(calls, c => c.Method == "GET");
        Assert.Contains(calls, c => c.Method == "POST");   // the change itself
        Assert.DoesNotContain(calls, c => (c.Path + c.Host + c.Result).Contains("nonce", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Httpd_ignores_a_bad_nonce_silently_so_only_the_read_back_tells()
    {
        // The behaviour the provider guards against, shown on the real server: 200 OK, nothing changed.
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, _fx.Manager)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["b"] = "bitbucket", ["w"] = _fx.Member1, ["nonce"] = "bad", ["w_status_D"] = "1" }),
        };
        request.Headers.Referrer = new Uri(_fx.Manager);
        using var response = await client.SendAsync(request);
        Assert.Equal(200, (int)response.StatusCode);
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        Assert.Equal(MemberAdminState.Ready, (await lb.FindMemberAsync(_fx.Member1, CancellationToken.None))!.State);
    }

    [Fact]
    public async Task A_Referer_on_another_host_name_is_dropped_by_httpd_and_reported_clearly()
    {
        // 'localhost' reaches the same server, but with UseCanonicalName On httpd compares the Referer with its ServerName
        // (127.0.0.1): it answers 200 and drops the change (AH10187). Only the read-back notices.
        using var lb = LoadBalancerFactory.Create(_fx.Describe(manager: _fx.Manager.Replace("127.0.0.1", "localhost")));
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(_fx.Member1, Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("ApacheRefererRejected", ex.ErrorId);
        Assert.Contains("Referer", ex.Message);
        using var right = LoadBalancerFactory.Create(_fx.Describe());
        Assert.Equal(MemberAdminState.Ready, (await right.FindMemberAsync(_fx.Member1, CancellationToken.None))!.State);
    }

    [Fact]
    public async Task Wrong_balancer_wrong_member_denied_and_unreachable_give_clear_errors()
    {
        using (var lb = LoadBalancerFactory.Create(_fx.Describe("nope")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
            Assert.Contains("balancer://bitbucket", ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(_fx.Describe()))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("http://10.9.9.9:7990", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
            Assert.Contains(_fx.Member1, ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(_fx.Describe(manager: $"http://127.0.0.1:{_fx.Port}/balancer-denied")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("ApachePermissionDenied", ex.ErrorId);
        }
        using (var lb = LoadBalancerFactory.Create(_fx.Describe(manager: $"http://127.0.0.1:{FreePort.Next()}/balancer-manager")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerUnreachable", ex.ErrorId);
        }
        using var check = LoadBalancerFactory.Create(_fx.Describe());
        Assert.All(await check.GetMembersAsync(CancellationToken.None), m => Assert.Equal(MemberAdminState.Ready, m.State));
    }
}
