namespace BitbucketZdu.Simulator.Cluster;

/// <summary>One row of the node list as the API reports it.</summary>
public sealed record NodeView(string Id, string Name, string IpAddress, int PortNumber, string? State, int? TasksTotal,
    int? ActiveUserCount, string? BuildNumber, string? Version)
{
    public string Key => IpAddress + ":" + PortNumber;
}

/// <summary>The cluster as every node reports it at one moment.</summary>
public sealed record ClusterView(ClusterDoc Doc, IReadOnlyList<NodeView> Nodes, string State)
{
    public bool CanStart => State == ClusterStates.Stable;
    public bool CanCancel => State == ClusterStates.ReadyToUpgrade;
    public bool CanApprove => State == ClusterStates.ReadyToRunUpgradeTasks;
    public bool CanRetry => State == ClusterStates.UpgradeTasksFailed;
}

/// <summary>
/// The documented rules of the rolling-upgrade plugin (docs: reference zdu-api.md §2): the node list is the live
/// nodes plus the snapshot taken at start (missing ones OFFLINE, matched by ipAddress:portNumber), sorted by name then
/// address; the cluster state is computed first-match-wins; transitions are guarded by that state.
/// </summary>
public static class ClusterLogic
{
    public static bool IsLive(NodeRecord r, long nowMs, TimeSpan heartbeatTimeout) =>
        nowMs - r.HeartbeatMs <= (long)heartbeatTimeout.TotalMilliseconds;

    public static ClusterView Build(ClusterDoc doc, IEnumerable<NodeRecord> records, long nowMs, TimeSpan heartbeatTimeout)
    {
        var live = records.Where(r => IsLive(r, nowMs, heartbeatTimeout))
            .GroupBy(r => r.Key).Select(g => g.OrderByDescending(r => r.HeartbeatMs).First()).ToList();
        var finalizing = doc.FinalizationEndsMs > nowMs ? doc.FinalizationNodeKey : null;
        var nodes = live.Select(r => r.SlowToReport
            // The plugin's adapter gives a node that does not report in time a null state and version (zdu-api.md §12).
            ? new NodeView(r.Id, r.Name, r.IpAddress, r.PortNumber, null, null, null, null, null)
            : new NodeView(r.Id, r.Name, r.IpAddress, r.PortNumber,
                r.Key == finalizing && r.State == NodeStates.Active ? NodeStates.RunningFinalizeUpgradeTasks : r.State,
                r.TasksTotal, r.ActiveUserCount, SimVersion.TryParse(r.Version, out var v) ? v.BuildNumber : null, r.Version)).ToList();
        var liveKeys = new HashSet<string>(live.Select(r => r.Key), StringComparer.Ordinal);
        if (doc.UpgradeModeEnabled)
            foreach (var s in doc.Snapshot.Where(s => liveKeys.Add(s.Key)))
                nodes.Add(new NodeView(s.Id, s.Name, s.IpAddress, s.PortNumber, NodeStates.Offline, null, null, null, null));
        nodes = nodes.OrderBy(n => n.Name, StringComparer.Ordinal).ThenBy(n => n.IpAddress, StringComparer.Ordinal)
            .ThenBy(n => n.PortNumber).ToList();
        return new ClusterView(doc, nodes, ComputeState(doc, nodes, nowMs));
    }

    /// <summary>calculateClusterState, first match wins.</summary>
    public static string ComputeState(ClusterDoc doc, IReadOnlyList<NodeView> nodes, long nowMs)
    {
        if (nodes.Any(n => n.State == NodeStates.RunningFinalizeUpgradeTasks)) return ClusterStates.RunningUpgradeTasks;
        if (!doc.UpgradeModeEnabled)
            return doc.FinalizationFailed && doc.FinalizationEndsMs <= nowMs ? ClusterStates.UpgradeTasksFailed : ClusterStates.Stable;
        if (nodes.Any(n => n.State == NodeStates.Error)) return ClusterStates.Mixed;
        var versions = nodes.Where(n => n.State != NodeStates.Offline).Select(n => n.Version).Distinct().ToList();
        if (versions.Count > 1) return ClusterStates.Mixed;
        if (versions.All(v => v == doc.OriginalVersion)) return ClusterStates.ReadyToUpgrade;
        return ClusterStates.ReadyToRunUpgradeTasks;
    }

    /// <summary>
    /// Whether a node of <paramref name="version"/> may join (null) or why not. Outside upgrade mode only the
    /// cluster's version joins, unless no other node runs (an upgrade with downtime: the schema moves up, never down).
    /// In upgrade mode the original version or a higher bug-fix release of its line joins.
    /// </summary>
    public static string? JoinRefusal(ClusterDoc doc, SimVersion version, bool otherNodesRunning)
    {
        if (doc.Version is null || !SimVersion.TryParse(doc.Version, out var db)) return null;
        if (version == db) return null;
        if (version < db)
            return $"This node runs Bitbucket {version} but the cluster's database is on {db}: a node cannot join with a lower version (downgrades are not supported).";
        if (doc.UpgradeModeEnabled)
        {
            var original = SimVersion.TryParse(doc.OriginalVersion, out var o) ? o : db;
            return version.SameLine(original)
                ? null
                : $"This node runs Bitbucket {version}; during a rolling upgrade only bug-fix releases of {original.Major}.{original.Minor} (from {original}) may join.";
        }
        return otherNodesRunning
            ? $"This node runs Bitbucket {version} but the cluster runs {db}. Enable upgrade mode (POST /rest/zdu/start) before starting a node on a newer bug-fix release."
            : null;
    }
}
