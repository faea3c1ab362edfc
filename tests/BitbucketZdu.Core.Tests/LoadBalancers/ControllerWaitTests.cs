using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;

namespace BitbucketZdu.Core.Tests.LoadBalancers;

/// <summary>The controller's drain and health waits on the engine's poller with virtual time: exact deadlines, no real waiting.</summary>
public sealed class ControllerWaitTests
{
    /// <summary>Two members; node-1's work in flight and health follow virtual time.</summary>
    private sealed class TimedBalancer : LoadBalancerBase
    {
        private readonly VirtualClock _time;
        private readonly Dictionary<string, MemberAdminState> _states = new() { ["node-1"] = MemberAdminState.Ready, ["node-2"] = MemberAdminState.Ready };
        public readonly List<double> DrainReads = new();
        public Func<TimeSpan, int> Active = _ => 0;
        public Func<TimeSpan, MemberHealth> Health = _ => MemberHealth.Up;

        public TimedBalancer(VirtualClock time) : base(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { "127.0.0.1:9999" }, "bitbucket")) => _time = time;

        public MemberAdminState StateOf(string name) => _states[name];
        public void Set(string name, MemberAdminState state) => _states[name] = state;

        private LoadBalancerMember Member(string name) =>
            new(name, null, "bitbucket", _states[name], name == "node-1" ? Health(_time.Now) : MemberHealth.Up) { ActiveConnections = 0 };

        public override Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<LoadBalancerMember>>(_states.Keys.Select(Member).ToList());

        public override Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            _states[member.Name] = state;
            return Task.FromResult(Member(member.Name));
        }

        public override Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            DrainReads.Add(Math.Round(_time.Now.TotalSeconds, 4));
            var active = Active(_time.Now);
            return Task.FromResult(new DrainStatus(active == 0, active, $"{active} active connection(s) on {member.Name}"));
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) => $"set {member.Name} {state}";
    }

    private static LoadBalancerOptions Options() => new()
    {
        DrainTimeout = TimeSpan.FromSeconds(30), HealthTimeout = TimeSpan.FromSeconds(20),
        PollInterval = TimeSpan.FromMilliseconds(100), MaxPollInterval = TimeSpan.FromSeconds(2),
    };

    [Fact]
    public async Task A_drain_that_never_ends_stops_at_the_drain_timeout_exactly_and_reports_what_was_cut()
    {
        var time = new VirtualClock();
        var lb = new TimedBalancer(time) { Active = _ => 3 };

        var result = await new LoadBalancerController(lb, time.ToPoller()).RemoveAsync("node-1", Options(), NullOperationHost.Instance, CancellationToken.None);

        Assert.True(result.DrainTimedOut);
        Assert.Equal(3, result.ConnectionsCut);
        Assert.Equal(3, result.ActiveAtDrainStart);
        Assert.Equal(TimeSpan.FromSeconds(30), result.DrainDuration);
        Assert.Equal(MemberAdminState.Maintenance, lb.StateOf("node-1"));
        var gaps = lb.DrainReads.Zip(lb.DrainReads.Skip(1), (a, b) => Math.Round(b - a, 4)).ToList();
        Assert.Equal(new[] { 0.1, 0.15, 0.225 }, gaps.Take(3));
        Assert.All(gaps, g => Assert.InRange(g, 0.0001, 2));
    }

    [Fact]
    public async Task A_drain_ends_at_the_first_read_after_the_work_finished()
    {
        var time = new VirtualClock();
        var lb = new TimedBalancer(time) { Active = t => t < TimeSpan.FromSeconds(4) ? 2 : 0 };

        var result = await new LoadBalancerController(lb, time.ToPoller()).RemoveAsync("node-1", Options(), NullOperationHost.Instance, CancellationToken.None);

        Assert.False(result.DrainTimedOut);
        Assert.Equal(0, result.ConnectionsCut);
        Assert.InRange(result.DrainDuration.TotalSeconds, 4, 6);
    }

    [Fact]
    public async Task A_member_never_healthy_fails_at_the_health_timeout_and_is_put_back()
    {
        var time = new VirtualClock();
        var lb = new TimedBalancer(time) { Health = _ => MemberHealth.Down };
        lb.Set("node-1", MemberAdminState.Maintenance);

        var ex = await Assert.ThrowsAsync<BbException>(() =>
            new LoadBalancerController(lb, time.ToPoller()).AddAsync("node-1", Options(), NullOperationHost.Instance, CancellationToken.None));

        Assert.Equal("LoadBalancerMemberUnhealthy", ex.ErrorId);
        Assert.Contains("not reported healthy within 20 s", ex.Message);
        Assert.Equal(20, time.Now.TotalSeconds);
        Assert.Equal(MemberAdminState.Maintenance, lb.StateOf("node-1"));
    }

    [Fact]
    public async Task A_member_that_rises_is_back_at_the_first_read_after_it_did()
    {
        var time = new VirtualClock();
        var lb = new TimedBalancer(time) { Health = t => t < TimeSpan.FromSeconds(3) ? MemberHealth.Down : MemberHealth.Up };
        lb.Set("node-1", MemberAdminState.Maintenance);

        var result = await new LoadBalancerController(lb, time.ToPoller()).AddAsync("node-1", Options(), NullOperationHost.Instance, CancellationToken.None);

        Assert.Equal(MemberHealth.Up, result.Health);
        Assert.InRange(result.HealthWait.TotalSeconds, 3, 5);
        Assert.Equal(MemberAdminState.Ready, lb.StateOf("node-1"));
    }
}
