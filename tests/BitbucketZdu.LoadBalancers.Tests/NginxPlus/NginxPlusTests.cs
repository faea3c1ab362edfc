using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.NginxPlus;

public sealed class NginxPlusTests : IDisposable
{
    private readonly NginxPlusStub _stub = new();

    private LoadBalancerDescription Describe(string upstream = "bitbucket") =>
        new(LoadBalancerKind.NginxPlus, new[] { _stub.ApiBase }, upstream) { RequestTimeout = TimeSpan.FromSeconds(5) };

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(10), HealthTimeout = TimeSpan.FromSeconds(5), PollInterval = TimeSpan.FromMilliseconds(20) };

    [Fact]
    public async Task Remove_drains_until_active_is_zero_then_marks_down_and_add_brings_it_up()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        var controller = new LoadBalancerController(lb);
        var removed = await controller.RemoveAsync("10.0.0.11:7990", Fast(), new TestHost(), CancellationToken.None);

        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.Equal(0, removed.ConnectionsCut);
        Assert.True(removed.ActiveAtDrainStart >= 1);
        Assert.Equal(new[] { "0 {\"drain\":true}", "0 {\"down\":true}" }, _stub.Patches);
        Assert.Equal(0, _stub[0].Active);

        var added = await controller.AddAsync("10.0.0.11:7990", Fast(), new TestHost(), CancellationToken.None);
        Assert.Equal(MemberAdminState.Ready, added.State);
        Assert.Equal(MemberHealth.Up, added.Health);
        Assert.False(_stub[0].Down || _stub[0].Drain);
    }

    [Fact]
    public async Task A_read_only_api_gives_a_permission_error_and_nothing_changes()
    {
        _stub.ReadOnly = true;
        using var lb = LoadBalancerFactory.Create(Describe());
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.11:7990", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("NginxPlusPermissionDenied", ex.ErrorId);
        Assert.Contains("write=on", ex.Message);
        Assert.False(_stub[0].Drain || _stub[0].Down);
    }

    [Fact]
    public async Task Wrong_upstream_wrong_member_old_api_and_unreachable_give_clear_errors()
    {
        using (var lb = LoadBalancerFactory.Create(Describe("nope")))
            Assert.Equal("LoadBalancerBackendNotFound", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        using (var lb = LoadBalancerFactory.Create(Describe()))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.9.9.9:7990", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
            Assert.Contains("10.0.0.12:7990", ex.Message);
        }
        _stub.Versions = new[] { 1 };
        using (var lb = LoadBalancerFactory.Create(Describe()))
            Assert.Equal("NginxPlusApiTooOld", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        using (var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.NginxPlus, new[] { $"http://127.0.0.1:{FreePort.Next()}/api" }, "bitbucket")))
            Assert.Equal("LoadBalancerUnreachable", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
        Assert.Empty(_stub.Patches);
    }

    public void Dispose() => _stub.Dispose();
}
