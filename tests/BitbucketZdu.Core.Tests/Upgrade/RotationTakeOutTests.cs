using System.Collections;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// Issue 15: a node with an HTTP and an SSH member stops getting work of both kinds at once, so its drain lasts as long
/// as the longest work in flight. One after the other, an SSH clone that began while the HTTP member drained was
/// waited for too (bench: 2.85 s from out of rotation to the stop signal with one 1.5 s clone loop per protocol).
/// </summary>
public sealed class RotationTakeOutTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-rot-").FullName;

    /// <summary>An in-memory HAProxy-like balancer (MAINT drains) whose member is busy until <see cref="Idle"/>.</summary>
    private sealed class BusyBalancer : LoadBalancerBase
    {
        private readonly object _gate = new();
        private readonly Dictionary<string, MemberAdminState> _states;
        private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource InMaintenance { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public BusyBalancer(bool busy, params string[] names)
            : base(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { "127.0.0.1:9999" }, "bitbucket"))
        {
            _states = names.ToDictionary(n => n, _ => MemberAdminState.Ready);
            if (!busy) _idle.SetResult();
        }

        public void Idle() => _idle.TrySetResult();
        public override bool DrainsInMaintenance => true;
        public MemberAdminState State(string name) { lock (_gate) return _states[name]; }
        private LoadBalancerMember Member(string name) => new(name, null, "bitbucket", _states[name], MemberHealth.Up) { ActiveConnections = _idle.Task.IsCompleted ? 0 : 1 };

        public override Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            lock (_gate) return Task.FromResult<IReadOnlyList<LoadBalancerMember>>(_states.Keys.Select(Member).ToList());
        }

        public override Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken)
        {
            lock (_gate) return Task.FromResult(_states.ContainsKey(name) ? Member(name) : null);
        }

        public override Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            lock (_gate) _states[member.Name] = state;
            if (state == MemberAdminState.Maintenance) InMaintenance.TrySetResult();
            lock (_gate) return Task.FromResult(Member(member.Name));
        }

        public override Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken) =>
            Task.FromResult(_idle.Task.IsCompleted ? new DrainStatus(true, 0, "idle") : new DrainStatus(false, 1, "1 session"));

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) => $"set {member.Name} {state}";
        public override void Dispose() { }
    }

    [Fact]
    public async Task A_nodes_members_in_two_balancers_go_out_at_the_same_time()
    {
        var archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.tar.gz");
        File.WriteAllText(archive, "x");
        Hashtable Node(string name) => new()
        {
            ["Name"] = name, ["Url"] = "http://127.0.0.1:1/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/atlassian/bitbucket", ["Service"] = "Script",
            ["Members"] = new Hashtable { ["lb"] = name, ["lb-ssh"] = name },
        };
        var profile = ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = PreflightCheck.Sha256Of(archive) },
            ["LoadBalancers"] = new object[]
            {
                new Hashtable { ["Name"] = "lb", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9999" } },
                new Hashtable { ["Name"] = "lb-ssh", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9998" } },
            },
            ["Nodes"] = new object[] { Node("node-1"), Node("node-2") },
            ["Timeouts"] = new Hashtable { ["FirstPollMilliseconds"] = 10, ["MaxPollMilliseconds"] = 20 },
        }, null);
        var http = new BusyBalancer(busy: true, "node-1", "node-2");  // a request in flight on node-1
        var ssh = new BusyBalancer(busy: true, "node-1", "node-2");   // and a clone
        var balancers = new Dictionary<string, BusyBalancer> { ["lb"] = http, ["lb-ssh"] = ssh };
        using var rotation = new LoadBalancerRotation(profile, createController: p => new LoadBalancerController(balancers[p.Name]));

        var takeOut = rotation.TakeOutAsync(profile.Nodes[0], TimeSpan.FromSeconds(60), CancellationToken.None);

        // Both members are out while both still drain: no new work of either kind reaches the node.
        await http.InMaintenance.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await ssh.InMaintenance.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(takeOut.IsCompleted);
        Assert.Equal(MemberAdminState.Maintenance, http.State("node-1"));
        Assert.Equal(MemberAdminState.Maintenance, ssh.State("node-1"));

        ssh.Idle();
        http.Idle();
        await takeOut.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, rotation.Changes.Count);
        Assert.Equal(MemberAdminState.Ready, http.State("node-2"));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
