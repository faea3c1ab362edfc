using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Core.Upgrade.Ports;

namespace BitbucketZdu.Core.Tests.Upgrade.Fakes;

/// <summary>One simulated node: its machine, its load-balancer member and what the cluster API says about it.</summary>
public sealed class FakeNode
{
    public required string Name { get; init; }
    public required string Ip { get; init; }
    public int Port { get; init; } = 5701;
    public string Address => Ip + ":" + Port;
    public int Restarts { get; set; }
    public string Id => $"{Name}-id{Restarts}";

    public bool Running { get; set; } = true;
    public string InstalledVersion { get; set; } = "";
    public HashSet<string> Staged { get; } = new();
    public TimeSpan StartedAt { get; set; } = TimeSpan.MinValue;
    public TimeSpan StoppedAt { get; set; } = TimeSpan.MinValue;
    public RotationState Rotation { get; set; } = RotationState.InRotation;
    /// <summary>Requests still running on the node at the load balancer (a member put in maintenance keeps them).</summary>
    public bool InFlight { get; set; }
    public int? TasksTotal { get; set; }
    public int? ActiveUsers { get; set; }

    // Knobs for failure cases.
    public string? FailStartOnVersion { get; set; }
    public bool HostReachable { get; set; } = true;
    public bool LoadBalancerReachable { get; set; } = true;
    public bool MemberFound { get; set; } = true;
    public long FreeDisk { get; set; } = 50L * 1024 * 1024 * 1024;
    public bool ForceError { get; set; }
    /// <summary>A stop request leaves the process running, shutting down for ever (TERMINATING) until killed.</summary>
    public bool HangOnStop { get; set; }
    public bool Terminating { get; set; }
    public int Pid => 4100 + Restarts;
}

/// <summary>
/// The simulated cluster, its machines and load balancer, following zdu-api.md §2: upgrade mode with a snapshot of
/// the nodes taken at start; stopped snapshot nodes show OFFLINE with no version; state computed first-match-wins
/// (ERROR in upgrade mode → MIXED; &gt;1 live version → MIXED; all on original → READY_TO_UPGRADE; else
/// READY_TO_RUN_UPGRADE_TASKS); start/cancel/approve guarded (409 otherwise). Outside upgrade mode a node on another
/// version cannot join (ERROR). Every change is logged in <see cref="Operations"/>.
/// </summary>
public sealed class FakeWorld
{
    private readonly object _gate = new();

    public FakeWorld(string version, params string[] names)
    {
        Version = version;
        var i = 0;
        foreach (var n in names)
        {
            i++;
            Nodes.Add(new FakeNode { Name = n, Ip = "10.0.0." + i, InstalledVersion = version, StartedAt = TimeSpan.FromHours(-1) });
            Nodes[^1].Staged.Add(version);
        }
    }

    public VirtualClock Clock { get; } = new();
    /// <summary>Every wait of the engine advances virtual time and samples the world (<see cref="Observe"/>).</summary>
    public UpgradeClock UpgradeClock => new(Clock, (d, ct) =>
    {
        ct.ThrowIfCancellationRequested();
        Clock.Advance(d);
        Observe();
        return Task.CompletedTask;
    });

    /// <summary>The most nodes seen out at once (out of rotation, draining, or not running), over every sample.</summary>
    public int MaxOutSeen { get; private set; }
    /// <summary>The fewest nodes seen ACTIVE and in rotation at once, over every sample.</summary>
    public int MinServingSeen { get; private set; } = int.MaxValue;

    /// <summary>Samples how many nodes are out and how many serve: called at every change and every wait of the engine.</summary>
    public void Observe()
    {
        lock (_gate)
        {
            var outNow = Nodes.Count(n => n.Rotation != RotationState.InRotation || !n.Running);
            var serving = Nodes.Count(n => n.Rotation == RotationState.InRotation && StateOf(n) == NodeState.ACTIVE);
            MaxOutSeen = Math.Max(MaxOutSeen, outNow);
            MinServingSeen = Math.Min(MinServingSeen, serving);
        }
    }
    public List<FakeNode> Nodes { get; } = new();
    /// <summary>The cluster's version outside upgrade mode.</summary>
    public string Version { get; set; }
    public bool UpgradeMode { get; set; }
    public string? OriginalVersion { get; set; }
    public List<FakeNode> Snapshot { get; } = new();
    /// <summary>(viewer, seen): the viewer's own API does not list the seen node.</summary>
    public HashSet<(string viewer, string seen)> Partitions { get; } = new();
    public List<string> Operations { get; } = new();
    /// <summary>The API answers 401 to every call (the sysadmin's password changed).</summary>
    public bool RefuseCredentials { get; set; }

    public TimeSpan DrainDuration { get; set; } = TimeSpan.FromSeconds(3);
    public TimeSpan StopDuration { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan StartDuration { get; set; } = TimeSpan.FromSeconds(20);
    public TimeSpan OfflineDetection { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan PreStageDuration { get; set; } = TimeSpan.FromSeconds(4);
    /// <summary>How long the finalization tasks run after approve (RUNNING_UPGRADE_TASKS, upgrade mode off) before STABLE.</summary>
    public TimeSpan FinalizationTasksDuration { get; set; } = TimeSpan.Zero;
    /// <summary>The finalization tasks fail when they end: UPGRADE_TASKS_FAILED instead of STABLE (zdu-api.md).</summary>
    public bool FinalizationTasksFail { get; set; }
    private TimeSpan _tasksUntil = TimeSpan.MinValue;

    public FakeNode this[string name] => Nodes.Single(n => n.Name == name);

    public void Log(string op)
    {
        lock (_gate) Operations.Add(op);
        Observe();
    }

    public int Count(string op)
    {
        lock (_gate) return Operations.Count(o => o == op);
    }

    internal object Gate => _gate;

    // ---- the API's view ----

    private NodeState StateOf(FakeNode n)
    {
        var now = Clock.Now;
        if (!n.Running) return now < n.StoppedAt + OfflineDetection ? NodeState.TERMINATING : NodeState.OFFLINE;
        if (n.Terminating) return NodeState.TERMINATING;
        if (n.ForceError) return NodeState.ERROR;
        if (n.FailStartOnVersion == n.InstalledVersion) return now < n.StartedAt + StartDuration ? NodeState.STARTING : NodeState.ERROR;
        if (!UpgradeMode && n.InstalledVersion != Version) return NodeState.ERROR; // cannot join outside upgrade mode
        if (UpgradeMode && OriginalVersion is not null && !IsSameLineNotLower(n.InstalledVersion, OriginalVersion)) return NodeState.ERROR;
        return now < n.StartedAt + StartDuration ? NodeState.STARTING : NodeState.ACTIVE;
    }

    private static bool IsSameLineNotLower(string version, string original)
    {
        var v = BitbucketVersion.Parse(version);
        var o = BitbucketVersion.Parse(original);
        return v.Equals(o) || o.IsBugfixUpgradeTo(v);
    }

    /// <summary>Live nodes (running, or stopping but not yet detected) plus snapshot nodes as OFFLINE; sorted by name then ip.</summary>
    public List<ZduNode> ApiNodes(string? viewer)
    {
        lock (_gate)
        {
            var rows = new List<ZduNode>();
            foreach (var n in Nodes)
            {
                if (viewer is not null && Partitions.Contains((viewer, n.Name))) continue;
                var state = StateOf(n);
                if (state == NodeState.OFFLINE)
                {
                    if (Snapshot.Contains(n))
                        rows.Add(new ZduNode { Id = n.Id, Name = n.Name, IpAddress = n.Ip, PortNumber = n.Port, State = NodeState.OFFLINE, StateText = "OFFLINE", Local = false });
                    continue;
                }
                rows.Add(new ZduNode
                {
                    Id = n.Id,
                    Name = n.Name,
                    IpAddress = n.Ip,
                    PortNumber = n.Port,
                    State = state,
                    StateText = state.ToString(),
                    Version = n.InstalledVersion,
                    BuildNumber = "1234",
                    TasksTotal = state == NodeState.ACTIVE ? n.TasksTotal : null,
                    ActiveUserCount = state == NodeState.ACTIVE ? n.ActiveUsers : null,
                    Local = n.Name == viewer,
                });
            }
            return rows.OrderBy(r => r.Name, StringComparer.Ordinal).ThenBy(r => r.IpAddress, StringComparer.Ordinal).ToList();
        }
    }

    public ClusterState State(List<ZduNode> rows)
    {
        lock (_gate)
        {
            if (!UpgradeMode) return Clock.Now < _tasksUntil ? ClusterState.RUNNING_UPGRADE_TASKS
                : FinalizationTasksFail && _tasksUntil != TimeSpan.MinValue ? ClusterState.UPGRADE_TASKS_FAILED : ClusterState.STABLE;
            if (rows.Any(r => r.State == NodeState.ERROR)) return ClusterState.MIXED;
            var versions = rows.Where(r => r.State != NodeState.OFFLINE && r.Version is not null).Select(r => r.Version).Distinct().ToList();
            if (versions.Count > 1) return ClusterState.MIXED;
            if (versions.Count == 0 || versions[0] == OriginalVersion) return ClusterState.READY_TO_UPGRADE;
            return ClusterState.READY_TO_RUN_UPGRADE_TASKS;
        }
    }

    public ZduCluster Cluster(string? viewer = null)
    {
        lock (_gate)
        {
            // Computed over the whole cluster (the state lives in the database), listed as the viewer sees nodes.
            var state = State(ApiNodes(null));
            var links = new List<ZduLink> { new("self", "/") };
            if (state == ClusterState.STABLE) links.Add(new ZduLink("start", "/start"));
            if (state == ClusterState.READY_TO_UPGRADE) links.Add(new ZduLink("cancel", "/cancel"));
            if (state == ClusterState.READY_TO_RUN_UPGRADE_TASKS) links.Add(new ZduLink("approve", "/approve"));
            return new ZduCluster
            {
                UpgradeModeEnabled = UpgradeMode,
                State = state,
                StateText = state.ToString(),
                OriginalVersion = UpgradeMode ? OriginalVersion : null,
                Nodes = ApiNodes(viewer),
                Links = links,
            };
        }
    }

    /// <summary>The next this many POST start fail with a 503 that, as ZduClient proves by re-reading, did not take effect.</summary>
    public int FailStartTimes { get; set; }

    public ZduCluster StartUpgradeMode()
    {
        lock (_gate)
        {
            if (FailStartTimes > 0)
            {
                FailStartTimes--;
                Operations.Add("cluster:start-failed");
                var failed = new ZduApiException(ZduErrorKind.ServerError, "POST /rest/zdu/start returned 503 and the cluster is unchanged.", null, 503);
                // ZduClient attaches the re-read cluster (an internal setter; this file is also compiled into Cmdlets.Tests).
                typeof(ZduApiException).GetProperty(nameof(ZduApiException.Cluster))!.SetValue(failed, Cluster());
                throw failed;
            }
            if (Cluster().State != ClusterState.STABLE) throw Conflict("start");
            UpgradeMode = true;
            OriginalVersion = Version;
            Snapshot.Clear();
            Snapshot.AddRange(Nodes.Where(n => StateOf(n) != NodeState.OFFLINE));
            Operations.Add("cluster:start");
            return Cluster();
        }
    }

    public ZduCluster CancelUpgradeMode()
    {
        lock (_gate)
        {
            if (Cluster().State != ClusterState.READY_TO_UPGRADE) throw Conflict("cancel");
            UpgradeMode = false;
            OriginalVersion = null;
            Snapshot.Clear();
            Operations.Add("cluster:cancel");
            return Cluster();
        }
    }

    public ZduCluster Approve()
    {
        lock (_gate)
        {
            var rows = ApiNodes(null);
            if (State(rows) != ClusterState.READY_TO_RUN_UPGRADE_TASKS) throw Conflict("finalize");
            Version = rows.First(r => r.State != NodeState.OFFLINE).Version!;
            UpgradeMode = false;
            OriginalVersion = null;
            Snapshot.Clear();
            _tasksUntil = Clock.Now + FinalizationTasksDuration;
            Operations.Add("cluster:approve");
            return Cluster();
        }
    }

    private static ZduApiException Conflict(string what) =>
        new(ZduErrorKind.InvalidState, $"Invalid ZDU transition: {what} (409)", new Uri("http://fake/rest/zdu/" + what), 409);

    /// <summary>True when every node runs <paramref name="version"/>, ACTIVE, in rotation, and the cluster is STABLE.</summary>
    public bool AllOn(string version) =>
        !UpgradeMode && Clock.Now >= _tasksUntil && Version == version && Nodes.All(n => n.Running && n.InstalledVersion == version && StateOf(n) == NodeState.ACTIVE && n.Rotation == RotationState.InRotation);

    internal NodeState NodeStateOf(FakeNode n)
    {
        lock (_gate) return StateOf(n);
    }
}
