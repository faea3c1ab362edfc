using System.Collections.Concurrent;
using BitbucketZdu.Simulator.Cluster;

namespace BitbucketZdu.Simulator.Node;

/// <summary>
/// The life of one node: its record in the shared home (heartbeat), its state (STARTING → ACTIVE or ERROR →
/// TERMINATING → gone), its load figures, and the faults that apply to it.
/// </summary>
public sealed class NodeRuntime
{
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<string, long> _users = new(StringComparer.Ordinal);
    private readonly NodeRecord _record;
    private FaultSettings _faults = new();
    private string _faultRevision = "";
    private int _apiErrorsLeft;
    private int _inflight;
    private bool _left;

    public NodeRuntime(NodeConfig config)
    {
        Config = config;
        Store = new SharedStore(config.SharedHome);
        _record = new NodeRecord
        {
            Id = NodeId(config),
            Name = config.NodeName,
            IpAddress = config.IpAddress,
            PortNumber = config.ClusterPort,
            HttpPort = config.Port,
            State = NodeStates.Starting,
            Version = config.Version.ToString(),
            Pid = Environment.ProcessId,
        };
        ReloadFaults();
        // Fault ipAddress moves the node when its process starts (a node back on a new address): with stable ids the
        // start-time snapshot keeps the old address as an OFFLINE row with the same id (zdu-api.md §12).
        if (!string.IsNullOrWhiteSpace(_faults.IpAddress)) _record.IpAddress = _faults.IpAddress.Trim();
        // The start's extra delay is fixed when the process starts, before anyone can see it STARTING: a fault cleared
        // once the node shows STARTING must not shorten (or skip) the very start it was meant to slow down.
        _startDelayFault = TimeSpan.FromMilliseconds(_faults.StartDelayMs ?? 0);
    }

    private readonly TimeSpan _startDelayFault;

    public NodeConfig Config { get; }
    public SharedStore Store { get; }
    public string Id => _record.Id;
    public string Key => _record.Key;
    public string State { get { lock (_gate) return _record.State; } }
    public string? Error { get { lock (_gate) return _record.Error; } }
    public int InFlight => Volatile.Read(ref _inflight);
    public FaultSettings Faults { get { lock (_gate) return _faults; } }

    public static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public void Log(string message) =>
        Console.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss,fff} INFO  [{Config.NodeName}] {message}");

    /// <summary>Joins the cluster as STARTING (called once the HTTP port is bound).</summary>
    public void Announce()
    {
        Log($"Starting Bitbucket {Config.Version} (simulated) from {Config.InstallDir}; home {Config.Home}; shared home {Config.SharedHome}; node id {Id}; http://127.0.0.1:{Config.Port}");
        Publish();
    }

    /// <summary>The start-up: STARTING for the configured time, then the version check, then ACTIVE or ERROR.</summary>
    public async Task RunStartupAsync(CancellationToken ct)
    {
        var delay = Config.StartDelay + _startDelayFault;
        await Task.Delay(delay, ct).ConfigureAwait(false);
        string? refusal;
        using (Store.Lock())
        {
            var doc = Store.ReadCluster();
            var now = NowMs;
            var othersRunning = Store.ReadNodes().Any(r => r.Key != Key && ClusterLogic.IsLive(r, now, Config.HeartbeatTimeout)
                && r.State is NodeStates.Active or NodeStates.Terminating or NodeStates.Draining);
            refusal = ClusterLogic.JoinRefusal(doc, Config.Version, othersRunning);
            ReloadFaults();
            if (refusal is null && Faults.FailStart == true)
                refusal = "Bitbucket failed to start (simulated fault failStart).";
            if (refusal is null && (doc.Version is null || (!doc.UpgradeModeEnabled && Config.Version > SimVersion.Parse(doc.Version))))
            {
                if (doc.Version is not null) Log($"Upgrading the database from {doc.Version} to {Config.Version}.");
                doc.Version = Config.Version.ToString();
                Store.WriteCluster(doc);
            }
            lock (_gate)
            {
                if (_record.State != NodeStates.Starting) return;   // a stop came first
                _record.State = refusal is null ? NodeStates.Active : NodeStates.Error;
                _record.Error = refusal;
            }
            Publish();
        }
        Log(refusal is null ? $"Bitbucket {Config.Version} started; node is ACTIVE." : "Node is in ERROR: " + refusal);
    }

    /// <summary>Graceful stop begins: TERMINATING (and, with the hangOnStop fault, never ends).</summary>
    public void OnStopping()
    {
        ReloadFaults();
        // Fault drainOnStop: DRAINING while requests in flight finish, then TERMINATING (see Release.Dispose).
        lock (_gate) _record.State = Faults.DrainOnStop == true && InFlight > 0 ? NodeStates.Draining : NodeStates.Terminating;
        Publish();
        if (InFlight == 0) DrainingDone();   // the last request ended between the check and the change
        Log($"Shutting down gracefully: in-flight requests have {Config.GracePeriod.TotalSeconds:0.###} s to finish ({InFlight} in flight).");
        if (Faults.HangOnStop == true)
        {
            Log("Simulated fault hangOnStop: the shutdown hangs until the process is killed.");
            Thread.Sleep(Timeout.Infinite);
        }
    }

    /// <summary>The node leaves the cluster: its record is removed, so it shows OFFLINE (snapshot) or disappears.</summary>
    public void OnStopped()
    {
        lock (_gate) _left = true;
        Store.DeleteNode(_record);
        Log("Bitbucket stopped; the node left the cluster.");
    }

    public async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Config.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    ReloadFaults();
                    Publish();
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    Log("Heartbeat failed: " + ex.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Publish()
    {
        NodeRecord copy;
        lock (_gate)
        {
            if (_left) return;
            _record.HeartbeatMs = NowMs;
            _record.TasksTotal = InFlight + (_faults.ExtraTasks ?? 0);
            _record.ActiveUserCount = ActiveUsers() + (_faults.ExtraUsers ?? 0);
            _record.SlowToReport = _faults.NullState == true;
            copy = new NodeRecord
            {
                Id = _record.Id, Name = _record.Name, IpAddress = _record.IpAddress, PortNumber = _record.PortNumber,
                HttpPort = _record.HttpPort, State = _record.State, Version = _record.Version, TasksTotal = _record.TasksTotal,
                ActiveUserCount = _record.ActiveUserCount, HeartbeatMs = _record.HeartbeatMs, Pid = _record.Pid, Error = _record.Error,
                SlowToReport = _record.SlowToReport,
            };
        }
        Store.WriteNode(copy);
    }

    public void ReloadFaults()
    {
        var cluster = Store.ReadFaults("cluster");
        var node = Store.ReadFaults(Config.NodeName);
        var merged = (cluster ?? new FaultSettings()).Under(node);
        var revision = System.Text.Json.JsonSerializer.Serialize(cluster) + "|" + System.Text.Json.JsonSerializer.Serialize(node);
        lock (_gate)
        {
            _faults = merged;
            if (revision != _faultRevision)
            {
                _faultRevision = revision;
                _apiErrorsLeft = merged.ApiErrorCount ?? 0;
            }
        }
    }

    /// <summary>Whether this /rest/zdu request is to fail (burst count, then rate).</summary>
    public bool TakeApiError()
    {
        lock (_gate)
        {
            if (_apiErrorsLeft > 0)
            {
                _apiErrorsLeft--;
                return true;
            }
            return _faults.ApiErrorRate is double rate && rate > 0 && Random.Shared.NextDouble() < rate;
        }
    }

    public IDisposable TrackRequest(string? user)
    {
        Interlocked.Increment(ref _inflight);
        if (!string.IsNullOrEmpty(user)) _users[user] = NowMs;
        return new Release(this);
    }

    private int ActiveUsers()
    {
        var since = NowMs - 60_000;
        foreach (var kv in _users)
            if (kv.Value < since) _users.TryRemove(kv.Key, out _);
        return _users.Count;
    }

    private static string NodeId(NodeConfig config)
    {
        if (!config.StableNodeId) return Guid.NewGuid().ToString();
        var file = Path.Combine(config.Home, "bbsim-node-id");
        if (File.Exists(file)) return File.ReadAllText(file).Trim();
        var id = Guid.NewGuid().ToString();
        File.WriteAllText(file, id);
        return id;
    }

    /// <summary>The last request in flight of a DRAINING node finished: it is TERMINATING until it leaves.</summary>
    private void DrainingDone()
    {
        lock (_gate)
        {
            if (_record.State != NodeStates.Draining) return;
            _record.State = NodeStates.Terminating;
        }
        try { Publish(); } catch (IOException) { }
    }

    private sealed class Release(NodeRuntime owner) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            if (Interlocked.Decrement(ref owner._inflight) == 0) owner.DrainingDone();
        }
    }
}
