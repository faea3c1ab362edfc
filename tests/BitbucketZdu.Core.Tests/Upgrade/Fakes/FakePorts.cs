using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Tests.Upgrade.Fakes;

/// <summary>
/// The tool's process as far as the world is concerned: once killed, every call it makes fails (a dead process
/// reaches nothing), while the world (cluster, machines, journal on disk) keeps its state.
/// </summary>
public sealed class FakeProcess
{
    public bool Killed { get; private set; }
    public void Kill() => Killed = true;

    public void Check()
    {
        if (Killed) throw new SimulatedKillException();
    }
}

public sealed class SimulatedKillException : Exception
{
    public SimulatedKillException() : base("the process was killed (simulated)") { }
}

public static class FakePorts
{
    public static UpgradePorts Create(FakeWorld world, IJournalStore journal, FakeProcess? process = null)
    {
        process ??= new FakeProcess();
        return new UpgradePorts(new FakeZduClient(world, process, null), n => new FakeZduClient(world, process, n.Name),
            new FakeRotation(world, process), new FakeNodeHost(world, process), journal, world.UpgradeClock);
    }
}

public sealed class FakeZduClient : IZduClient
{
    private readonly FakeWorld _world;
    private readonly FakeProcess _process;
    private readonly string? _viewer;

    public FakeZduClient(FakeWorld world, FakeProcess process, string? viewer)
    {
        _world = world;
        _process = process;
        _viewer = viewer;
    }

    public Uri BaseUri => new(_viewer is null ? "http://cluster.fake/" : $"http://{_viewer}.fake/");

    private Task<T> Call<T>(Func<T> f, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        _process.Check();
        if (_world.RefuseCredentials)
            throw new ZduApiException(ZduErrorKind.Unauthorized, $"GET {BaseUri}rest/zdu/cluster returned 401. Bitbucket did not accept the credentials.", BaseUri, 401);
        if (_viewer is not null && !_world[_viewer].Running)
            throw new ZduApiException(ZduErrorKind.Unreachable, $"Connection refused ({BaseUri})", BaseUri);
        return Task.FromResult(f());
    }

    public Task<ZduCluster> GetClusterAsync(CancellationToken ct = default) => Call(() => _world.Cluster(_viewer), ct);

    public Task<ZduStateResponse> GetStateAsync(CancellationToken ct = default) => Call(() =>
    {
        var c = _world.Cluster(_viewer);
        return new ZduStateResponse { State = c.State, StateText = c.StateText, BuildInfo = c.Nodes.FirstOrDefault(n => n.Local) };
    }, ct);

    public Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken ct = default) =>
        Call(() => _world.Cluster(_viewer).Nodes.FirstOrDefault(n => n.Id == nodeId)
            ?? throw new ZduApiException(ZduErrorKind.NotFound, "no node " + nodeId, BaseUri, 404), ct);

    public Task<ZduCluster> StartAsync(CancellationToken ct = default) => Call(_world.StartUpgradeMode, ct);
    public Task<ZduCluster> CancelAsync(CancellationToken ct = default) => Call(_world.CancelUpgradeMode, ct);
    public Task<ZduCluster> ApproveAsync(CancellationToken ct = default) => Call(_world.Approve, ct);
    public Task<ZduCluster> RetryUpgradeAsync(CancellationToken ct = default) => Call<ZduCluster>(() => throw new NotSupportedException(), ct);
    public void Dispose() { }
}

/// <summary>What the fake load balancer and node hosts share: the world, the process that calls, the node lookup.</summary>
public abstract class FakePort
{
    protected FakePort(FakeWorld world, FakeProcess process)
    {
        World = world;
        Process = process;
    }

    protected FakeWorld World { get; }
    protected FakeProcess Process { get; }

    /// <summary>The node, once the (live) process has reached it; <paramref name="unreachable"/> says why not.</summary>
    protected FakeNode Reach(NodeProfile n, CancellationToken ct, Func<FakeNode, Exception?>? unreachable = null)
    {
        ct.ThrowIfCancellationRequested();
        Process.Check();
        var node = World[n.Name];
        if (unreachable?.Invoke(node) is Exception ex) throw ex;
        return node;
    }
}

public sealed class FakeRotation : FakePort, IRotation
{
    private readonly FakeWorld _world;

    public FakeRotation(FakeWorld world, FakeProcess process) : base(world, process) => _world = world;

    private FakeNode Node(NodeProfile n, CancellationToken ct) => Reach(n, ct, node =>
        node.LoadBalancerReachable ? null : new BbException("HAProxyUnreachable", BbErrorCategory.ConnectionError, "admin socket refused"));

    public Task<RotationProbe> ProbeAsync(NodeProfile n, CancellationToken ct)
    {
        var node = Reach(n, ct);
        return Task.FromResult(new RotationProbe
        {
            Reachable = node.LoadBalancerReachable,
            MemberFound = node.MemberFound,
            State = node.Rotation,
            OtherHealthyMembers = _world.Nodes.Count(o => o != node && o.Rotation == RotationState.InRotation && o.Running),
            Problem = node.MemberFound ? null : $"no server '{n.Members.FirstOrDefault()?.Member}' in the backend",
        });
    }

    public async Task TakeOutAsync(NodeProfile n, TimeSpan drainTimeout, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (node.Rotation == RotationState.OutOfRotation)
        {
            // Already out (a run killed after maintenance, during the wait): the work in flight is still waited for.
            if (!node.InFlight) return;
            _world.Log(n.Name + ":take-out-wait");
            await _world.UpgradeClock.Delay(_world.DrainDuration, ct);
            node.InFlight = false;
            return;
        }
        _world.Log(n.Name + ":take-out");
        node.Rotation = RotationState.Draining;
        _world.Observe();
        await _world.UpgradeClock.Delay(_world.DrainDuration, ct);
        node.Rotation = RotationState.OutOfRotation;
        node.InFlight = false;
        _world.Observe();
    }

    public Task PutBackAsync(NodeProfile n, TimeSpan healthyTimeout, CancellationToken ct, bool healthGatePassed = false)
    {
        var node = Node(n, ct);
        if (node.Rotation == RotationState.InRotation) return Task.CompletedTask;
        if (!node.Running) throw new BbException("HAProxyMemberUnhealthy", BbErrorCategory.OperationTimeout, $"{n.Name} is down: health checks fail");
        _world.Log(n.Name + ":put-back");
        node.Rotation = RotationState.InRotation;
        _world.Observe();
        return Task.CompletedTask;
    }

    public Task<RotationState> GetStateAsync(NodeProfile n, CancellationToken ct) => Task.FromResult(Node(n, ct).Rotation);
}

public sealed class FakeNodeHost : FakePort, INodeHost
{
    private readonly FakeWorld _world;

    public FakeNodeHost(FakeWorld world, FakeProcess process) : base(world, process) => _world = world;

    private FakeNode Node(NodeProfile n, CancellationToken ct) => Reach(n, ct, node =>
        node.HostReachable ? null : new BbException("NodeUnreachable", BbErrorCategory.ConnectionError, $"ssh {n.RemotingTarget}: connection refused"));

    private bool StatusRunning(FakeNode node) =>
        node.Running && !node.Terminating && node.FailStartOnVersion != node.InstalledVersion && _world.Clock.Now >= node.StartedAt + _world.StartDuration;

    public Task<NodeHostProbe> ProbeAsync(NodeProfile n, CancellationToken ct)
    {
        var node = Reach(n, ct);
        return Task.FromResult(node.HostReachable
            ? new NodeHostProbe { Reachable = true, InstalledVersion = node.InstalledVersion, FreeDiskBytes = node.FreeDisk }
            : new NodeHostProbe { Reachable = false, Problem = "ssh: connection refused" });
    }

    public Task<NodeHostState> GetStateAsync(NodeProfile n, CancellationToken ct)
    {
        var node = Node(n, ct);
        return Task.FromResult(new NodeHostState
        {
            ProcessRunning = node.Running,
            InstalledVersion = node.InstalledVersion,
            StagedVersions = node.Staged.ToList(),
            StatusRunning = StatusRunning(node),
            ProcessId = node.Running ? node.Pid : null,
        });
    }

    public async Task PreStageAsync(NodeProfile n, ReleaseArchive archive, string targetVersion, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (node.Staged.Contains(targetVersion)) return;
        _world.Log(n.Name + ":pre-stage");
        await _world.UpgradeClock.Delay(_world.PreStageDuration, ct);
        lock (_world.Gate) node.Staged.Add(targetVersion);
    }

    public async Task StopAsync(NodeProfile n, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (!node.Running) return;
        _world.Log(n.Name + ":stop");
        if (node.InFlight) _world.Log(n.Name + ":stop-cut-requests-in-flight");
        if (node.HangOnStop)
        {
            node.Terminating = true;
            return;
        }
        await _world.UpgradeClock.Delay(_world.StopDuration, ct);
        lock (_world.Gate)
        {
            node.Running = false;
            node.StoppedAt = _world.Clock.Now;
        }
        _world.Observe();
    }

    public Task WaitProcessGoneAsync(NodeProfile n, TimeSpan timeout, CancellationToken ct)
    {
        var node = Node(n, ct);
        return node.Running ? throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout, "still running") : Task.CompletedTask;
    }

    public Task InstallAsync(NodeProfile n, string targetVersion, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (node.Running) throw new BbException("NodeRunning", BbErrorCategory.InvalidOperation, "stop the node first");
        if (!node.Staged.Contains(targetVersion)) throw new BbException("NodeNotStaged", BbErrorCategory.InvalidOperation, targetVersion + " is not staged");
        if (node.InstalledVersion == targetVersion) return Task.CompletedTask;
        _world.Log(n.Name + ":install:" + targetVersion);
        node.InstalledVersion = targetVersion;
        return Task.CompletedTask;
    }

    public Task StartAsync(NodeProfile n, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (node.Running) return Task.CompletedTask;
        _world.Log(n.Name + ":start:" + node.InstalledVersion);
        lock (_world.Gate)
        {
            node.Running = true;
            node.Restarts++;
            node.StartedAt = _world.Clock.Now;
        }
        return Task.CompletedTask;
    }

    public async Task WaitStatusRunningAsync(NodeProfile n, TimeSpan timeout, CancellationToken ct)
    {
        var node = Node(n, ct);
        var deadline = _world.Clock.Now + timeout;
        while (!StatusRunning(node))
        {
            if (_world.Clock.Now >= deadline)
                throw new BbException("NodeStartTimeout", BbErrorCategory.OperationTimeout,
                    $"{n.Url}status did not answer RUNNING within {timeout.TotalSeconds:0} s (last: {(node.Running ? "STARTING" : "no answer")}).");
            await _world.UpgradeClock.Delay(TimeSpan.FromMilliseconds(250), ct);
        }
    }

    public Task RollBackAsync(NodeProfile n, string previousVersion, CancellationToken ct)
    {
        var node = Node(n, ct);
        if (node.Running) throw new BbException("NodeRunning", BbErrorCategory.InvalidOperation, "stop the node first");
        _world.Log(n.Name + ":rollback:" + previousVersion);
        node.InstalledVersion = previousVersion;
        return Task.CompletedTask;
    }
}

/// <summary>A journal whose k-th append kills the process: the line is written (begin/done) or not, chosen by <see cref="WriteBeforeKill"/>.</summary>
public sealed class KillingJournal : IJournalStore
{
    private readonly IJournalStore _inner;
    private readonly FakeProcess _process;
    private readonly int _killAt;
    private int _appends;

    public KillingJournal(IJournalStore inner, FakeProcess process, int killAt)
    {
        _inner = inner;
        _process = process;
        _killAt = killAt;
    }

    public bool WriteBeforeKill { get; init; }
    /// <summary>Kill at the first line this matches instead of at a count (e.g. the run-completed line).</summary>
    public Func<JournalEntry, bool>? KillAtLine { get; init; }
    public int Appends => _appends;
    public bool Fired { get; private set; }

    public Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken ct)
    {
        _process.Check();
        return _inner.ReadAsync(cluster, ct);
    }

    public async Task AppendAsync(string cluster, JournalEntry entry, CancellationToken ct)
    {
        _process.Check();
        if (Interlocked.Increment(ref _appends) == _killAt || (KillAtLine?.Invoke(entry) ?? false))
        {
            if (WriteBeforeKill) await _inner.AppendAsync(cluster, entry, ct);
            Fired = true;
            _process.Kill();
            throw new SimulatedKillException();
        }
        await _inner.AppendAsync(cluster, entry, ct);
    }

    public async Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, Action<string>? waiting, CancellationToken ct)
    {
        _process.Check();
        var inner = await _inner.AcquireLockAsync(cluster, owner, waiting, ct);
        return new DeadLock(inner, _process);
    }

    public string Describe(string cluster) => _inner.Describe(cluster);

    /// <summary>A killed process cannot release its lock: the file stays behind, as after a real kill.</summary>
    private sealed class DeadLock : IJournalLock
    {
        private readonly IJournalLock _inner;
        private readonly FakeProcess _process;

        public DeadLock(IJournalLock inner, FakeProcess process)
        {
            _inner = inner;
            _process = process;
        }

        public LockOwner? TookOverFrom => _inner.TookOverFrom;

        public ValueTask DisposeAsync() => _process.Killed ? default : _inner.DisposeAsync();
    }
}
