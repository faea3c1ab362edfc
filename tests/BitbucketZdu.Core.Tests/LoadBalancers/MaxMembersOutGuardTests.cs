using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.LoadBalancers;

namespace BitbucketZdu.Core.Tests.LoadBalancers;

/// <summary>
/// The controller's MaxMembersOut guard with a batch of removals (-MaxUnavailable n): n may be out, never n + 1, even
/// when the removals run at the same time and each reads the members before the others changed them.
/// </summary>
public sealed class MaxMembersOutGuardTests
{
    /// <summary>An in-memory balancer whose every call yields first, so concurrent callers interleave between read and change.</summary>
    private sealed class YieldingBalancer : LoadBalancerBase
    {
        private readonly object _gate = new();
        private readonly Dictionary<string, MemberAdminState> _states;

        public YieldingBalancer(params string[] names)
            : base(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { "127.0.0.1:9999" }, "bitbucket")) =>
            _states = names.ToDictionary(n => n, _ => MemberAdminState.Ready);

        public int OutNow
        {
            get { lock (_gate) return _states.Values.Count(s => s != MemberAdminState.Ready); }
        }

        private LoadBalancerMember Member(string name) => new(name, null, "bitbucket", _states[name], MemberHealth.Up) { ActiveConnections = 0 };

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            await Task.Yield();
            lock (_gate) return _states.Keys.Select(Member).ToList();
        }

        public override async Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken)
        {
            await Task.Yield();
            lock (_gate) return _states.ContainsKey(name) ? Member(name) : null;
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            await Task.Yield();
            lock (_gate)
            {
                _states[member.Name] = state;
                return Member(member.Name);
            }
        }

        public override Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken) =>
            Task.FromResult(new DrainStatus(true, 0, "idle"));

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) => $"set {member.Name} {state}";

        public override void Dispose() { }
    }

    private static LoadBalancerOptions Max(int n) => new() { MaxMembersOut = n, DrainTimeout = TimeSpan.FromSeconds(5), PollInterval = TimeSpan.FromMilliseconds(10) };

    [Fact]
    public async Task Concurrent_removals_take_out_at_most_MaxMembersOut_members()
    {
        for (var round = 0; round < 20; round++)
        {
            var lb = new YieldingBalancer("n1", "n2", "n3", "n4", "n5", "n6");
            var controller = new LoadBalancerController(lb);

            var attempts = new[] { "n1", "n2", "n3", "n4" }.Select(async m =>
            {
                try
                {
                    await controller.RemoveAsync(m, Max(3), NullOperationHost.Instance, CancellationToken.None);
                    return null;
                }
                catch (BbException ex)
                {
                    return ex.ErrorId;
                }
            }).ToList();
            var outcomes = await Task.WhenAll(attempts);

            Assert.Equal(3, lb.OutNow);
            Assert.Equal(new[] { "LoadBalancerTooManyMembersOut" }, outcomes.Where(o => o is not null));
        }
    }

    [Fact]
    public async Task MaxMembersOut_n_allows_n_out_and_refuses_one_more()
    {
        var lb = new YieldingBalancer("n1", "n2", "n3", "n4", "n5", "n6");
        var controller = new LoadBalancerController(lb);
        foreach (var m in new[] { "n1", "n2", "n3" })
            await controller.RemoveAsync(m, Max(3), NullOperationHost.Instance, CancellationToken.None);

        var ex = await Assert.ThrowsAsync<BbException>(() => controller.RemoveAsync("n4", Max(3), NullOperationHost.Instance, CancellationToken.None));

        Assert.Equal("LoadBalancerTooManyMembersOut", ex.ErrorId);
        Assert.Equal(3, lb.OutNow);
    }
}
