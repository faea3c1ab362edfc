namespace BitbucketZdu.Simulator.Balancer;

/// <summary>Administrative state bits as HAProxy reports them in <c>show servers state</c> (srv_admin_state).</summary>
[Flags]
public enum ServerAdminState
{
    Ready = 0,
    ForcedMaintenance = 0x01,
    ForcedDrain = 0x08,
}

/// <summary>One server of the backend: its administrative state, health and session counters.</summary>
public sealed class BackendServer
{
    private readonly object _gate = new();
    private ServerAdminState _admin;
    private bool _up = true;
    private int _health;
    private int _consecutiveSuccesses;
    private int _consecutiveFailures;
    private int _current;
    private int _max;
    private long _total;
    private long _checkFailures;
    private long _checksPassed;
    private long _downTransitions;
    private DateTime _lastChange = DateTime.UtcNow;
    private readonly int _rise;
    private readonly int _fall;

    public BackendServer(int id, BalancerServerOptions options, int rise, int fall)
    {
        Id = id;
        Name = options.Name;
        Host = options.Host;
        Port = options.Port;
        _rise = rise;
        _fall = fall;
        _health = rise + fall - 1;
    }

    public int Id { get; }
    public string Name { get; }
    public string Host { get; }
    public int Port { get; }

    public ServerAdminState AdminState { get { lock (_gate) return _admin; } }
    public bool IsUp { get { lock (_gate) return _up; } }
    public int CurrentSessions { get { lock (_gate) return _current; } }
    public int MaxSessions { get { lock (_gate) return _max; } }
    public long TotalSessions { get { lock (_gate) return _total; } }
    public long CheckFailures { get { lock (_gate) return _checkFailures; } }
    /// <summary>Health checks passed so far (a server starts UP, so this tells a check that passed from none yet).</summary>
    public long ChecksPassed { get { lock (_gate) return _checksPassed; } }
    public long DownTransitions { get { lock (_gate) return _downTransitions; } }
    public int CheckHealth { get { lock (_gate) return _health; } }
    public int SecondsSinceLastChange { get { lock (_gate) return (int)(DateTime.UtcNow - _lastChange).TotalSeconds; } }

    /// <summary>Takes new requests: not in maintenance or drain, and passing health checks.</summary>
    public bool AcceptsNewRequests
    {
        get { lock (_gate) return _admin == ServerAdminState.Ready && _up; }
    }

    /// <summary>HAProxy's status column: MAINT, DOWN, DRAIN or UP.</summary>
    public string Status
    {
        get
        {
            lock (_gate)
            {
                if ((_admin & ServerAdminState.ForcedMaintenance) != 0) return "MAINT";
                if (!_up) return "DOWN";
                if ((_admin & ServerAdminState.ForcedDrain) != 0) return "DRAIN";
                return "UP";
            }
        }
    }

    public void SetAdminState(ServerAdminState state)
    {
        lock (_gate)
        {
            if (_admin == state) return;
            _admin = state;
            _lastChange = DateTime.UtcNow;
        }
    }

    /// <summary>Records a health-check result: DOWN after <c>fall</c> consecutive failures, UP after <c>rise</c> successes.</summary>
    public void RecordCheck(bool passed)
    {
        lock (_gate)
        {
            if (passed)
            {
                _checksPassed++;
                _consecutiveFailures = 0;
                _consecutiveSuccesses++;
                if (!_up && _consecutiveSuccesses >= _rise) { _up = true; _lastChange = DateTime.UtcNow; }
            }
            else
            {
                _checkFailures++;
                _consecutiveSuccesses = 0;
                _consecutiveFailures++;
                if (_up && _consecutiveFailures >= _fall) { _up = false; _downTransitions++; _lastChange = DateTime.UtcNow; }
            }
            _health = _up ? _rise + _fall - 1 - Math.Min(_consecutiveFailures, _fall - 1) : Math.Min(_consecutiveSuccesses, _rise - 1);
        }
    }

    public void BeginSession()
    {
        lock (_gate)
        {
            _current++;
            _total++;
            if (_current > _max) _max = _current;
        }
    }

    public void EndSession()
    {
        lock (_gate) _current--;
    }
}
