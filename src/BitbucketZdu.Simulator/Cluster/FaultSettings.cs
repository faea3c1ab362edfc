namespace BitbucketZdu.Simulator.Cluster;

/// <summary>
/// Faults and load knobs, set cluster-wide (<c>faults/cluster.json</c>) or per node (<c>faults/&lt;node.name&gt;.json</c>)
/// in the shared home, by file or through <c>PUT /bbsim/admin/faults/{target}</c>. A node's own value wins over the
/// cluster-wide one. Every field is optional; see docs/simulator.md.
/// </summary>
public sealed class FaultSettings
{
    /// <summary>The node ends its start in ERROR instead of ACTIVE.</summary>
    public bool? FailStart { get; set; }
    /// <summary>Extra time in STARTING (slow start).</summary>
    public int? StartDelayMs { get; set; }
    /// <summary>A graceful stop never finishes: the node stays TERMINATING until killed.</summary>
    public bool? HangOnStop { get; set; }
    /// <summary>Status for injected /rest/zdu errors (default 503).</summary>
    public int? ApiErrorStatus { get; set; }
    /// <summary>Probability (0..1) that a /rest/zdu request fails with <see cref="ApiErrorStatus"/>.</summary>
    public double? ApiErrorRate { get; set; }
    /// <summary>The next N /rest/zdu requests on each node fail (a burst), counted from when the setting changes.</summary>
    public int? ApiErrorCount { get; set; }
    /// <summary>Added latency on /rest/zdu.</summary>
    public int? ApiLatencyMs { get; set; }
    /// <summary>Latency of the user endpoints (overrides bbsim.user.latency).</summary>
    public int? UserLatencyMs { get; set; }
    /// <summary>Connections are closed as soon as they are accepted (the client sees a connection failure).</summary>
    public bool? RefuseConnections { get; set; }
    /// <summary>Added to the node's reported tasksTotal (to make a node look busy).</summary>
    public int? ExtraTasks { get; set; }
    /// <summary>Added to the node's reported activeUserCount.</summary>
    public int? ExtraUsers { get; set; }
    /// <summary>Cluster-wide: approve ends in UPGRADE_TASKS_FAILED (then retryUpgrade makes it STABLE).</summary>
    public bool? UpgradeTasksFail { get; set; }
    /// <summary>The sysadmin's password changed to this one (the configured one is refused with 401 from then on).</summary>
    public string? AdminPassword { get; set; }
    /// <summary>Cluster-wide: after approve (and retryUpgrade) the finalization tasks run this long (RUNNING_UPGRADE_TASKS).</summary>
    public int? UpgradeTasksDurationMs { get; set; }
    /// <summary>approve takes effect, then answers 500 (documented for approve).</summary>
    public bool? ApproveFailsAfterEffect { get; set; }
    /// <summary>Node JSON as the plugin writes it: no portNumber (@JsonIgnore in the plugin).</summary>
    public bool? OmitPortNumber { get; set; }
    /// <summary>Node names reported as the plugin's default "Not configured".</summary>
    public bool? NamesNotConfigured { get; set; }
    /// <summary>Per node, read when the process starts: the ipAddress it reports (a node back on a new address).</summary>
    public string? IpAddress { get; set; }
    /// <summary>A graceful stop shows DRAINING while requests in flight finish, then TERMINATING.</summary>
    public bool? DrainOnStop { get; set; }
    /// <summary>/status answers this state instead of RUNNING while the node is ACTIVE (FIRST_RUN, MAINTENANCE).</summary>
    public string? StatusState { get; set; }
    /// <summary>Per node: its row has state and version null (a node slow to report).</summary>
    public bool? NullState { get; set; }

    /// <summary>These settings with <paramref name="node"/>'s values winning.</summary>
    public FaultSettings Under(FaultSettings? node) => node is null ? this : new FaultSettings
    {
        FailStart = node.FailStart ?? FailStart,
        StartDelayMs = node.StartDelayMs ?? StartDelayMs,
        HangOnStop = node.HangOnStop ?? HangOnStop,
        ApiErrorStatus = node.ApiErrorStatus ?? ApiErrorStatus,
        ApiErrorRate = node.ApiErrorRate ?? ApiErrorRate,
        ApiErrorCount = node.ApiErrorCount ?? ApiErrorCount,
        ApiLatencyMs = node.ApiLatencyMs ?? ApiLatencyMs,
        UserLatencyMs = node.UserLatencyMs ?? UserLatencyMs,
        RefuseConnections = node.RefuseConnections ?? RefuseConnections,
        ExtraTasks = node.ExtraTasks ?? ExtraTasks,
        ExtraUsers = node.ExtraUsers ?? ExtraUsers,
        UpgradeTasksFail = node.UpgradeTasksFail ?? UpgradeTasksFail,
        AdminPassword = node.AdminPassword ?? AdminPassword,
        UpgradeTasksDurationMs = node.UpgradeTasksDurationMs ?? UpgradeTasksDurationMs,
        ApproveFailsAfterEffect = node.ApproveFailsAfterEffect ?? ApproveFailsAfterEffect,
        OmitPortNumber = node.OmitPortNumber ?? OmitPortNumber,
        NamesNotConfigured = node.NamesNotConfigured ?? NamesNotConfigured,
        IpAddress = node.IpAddress ?? IpAddress,
        DrainOnStop = node.DrainOnStop ?? DrainOnStop,
        StatusState = node.StatusState ?? StatusState,
        NullState = node.NullState ?? NullState,
    };
}
