using System.Text.Json;
using System.Text.Json.Serialization;

namespace BitbucketZdu.Simulator.Cluster;

/// <summary>What one node publishes about itself in the shared home (its "cluster membership" and heartbeat).</summary>
public sealed class NodeRecord
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string IpAddress { get; set; } = "127.0.0.1";
    /// <summary>The cluster port the API reports (hazelcast.port; defaults to the HTTP port).</summary>
    public int PortNumber { get; set; }
    public int HttpPort { get; set; }
    public string State { get; set; } = NodeStates.Starting;
    public string Version { get; set; } = "";
    public int TasksTotal { get; set; }
    public int ActiveUserCount { get; set; }
    public long HeartbeatMs { get; set; }
    public int Pid { get; set; }
    public string? Error { get; set; }
    /// <summary>Fault nullState: the API reports this node with state and version null.</summary>
    public bool SlowToReport { get; set; }

    [JsonIgnore] public string Key => IpAddress + ":" + PortNumber;
}

/// <summary>A node remembered when upgrade mode was enabled (the plugin's snapshot table).</summary>
public sealed class SnapshotNode
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string IpAddress { get; set; } = "";
    public int PortNumber { get; set; }

    [JsonIgnore] public string Key => IpAddress + ":" + PortNumber;
}

/// <summary>The cluster-wide state that the real product keeps in its database.</summary>
public sealed class ClusterDoc
{
    public bool UpgradeModeEnabled { get; set; }
    public string? OriginalVersion { get; set; }
    /// <summary>The version the "database schema" is on: the version the cluster was last stable on.</summary>
    public string? Version { get; set; }
    public List<SnapshotNode> Snapshot { get; set; } = new();
    /// <summary>Set when finalization tasks failed (fault upgradeTasksFail); cleared by retryUpgrade.</summary>
    public bool FinalizationFailed { get; set; }
    /// <summary>Until when (Unix ms) the finalization tasks run after approve/retryUpgrade (fault upgradeTasksDurationMs).</summary>
    public long FinalizationEndsMs { get; set; }
    /// <summary>The node that runs them (ipAddress:portNumber): it shows RUNNING_FINALIZE_UPGRADE_TASKS meanwhile.</summary>
    public string? FinalizationNodeKey { get; set; }
}

/// <summary>
/// The cluster state shared by every node through the shared home (<c>bitbucket.shared.home</c>/bbsim/): one file
/// per node (heartbeat), one cluster file, fault files. Writes are atomic (write then rename); changes to the cluster
/// file happen under an exclusive file lock.
/// </summary>
public sealed class SharedStore
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public SharedStore(string sharedHome)
    {
        SharedHome = Path.GetFullPath(sharedHome);
        Root = Path.Combine(SharedHome, "bbsim");
        NodesDir = Path.Combine(Root, "nodes");
        FaultsDir = Path.Combine(Root, "faults");
        Directory.CreateDirectory(NodesDir);
        Directory.CreateDirectory(FaultsDir);
    }

    public string SharedHome { get; }
    public string Root { get; }
    public string NodesDir { get; }
    public string FaultsDir { get; }
    private string ClusterFile => Path.Combine(Root, "cluster.json");
    private string LockFile => Path.Combine(Root, "cluster.lock");

    public ClusterDoc ReadCluster() => ReadJson<ClusterDoc>(ClusterFile) ?? new ClusterDoc();

    public void WriteCluster(ClusterDoc doc) => WriteJson(ClusterFile, doc);

    public List<NodeRecord> ReadNodes()
    {
        var list = new List<NodeRecord>();
        foreach (var f in Directory.EnumerateFiles(NodesDir, "*.json"))
            if (ReadJson<NodeRecord>(f) is { } r) list.Add(r);
        return list;
    }

    public void WriteNode(NodeRecord record) => WriteJson(NodeFile(record), record);

    public void DeleteNode(NodeRecord record)
    {
        try { File.Delete(NodeFile(record)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private string NodeFile(NodeRecord r) => Path.Combine(NodesDir, $"{r.IpAddress}_{r.PortNumber}.json");

    /// <summary>The fault file of a target: "cluster" (every node) or a node name.</summary>
    public string FaultFile(string target)
    {
        if (string.IsNullOrWhiteSpace(target) || target.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || target.Contains(".."))
            throw new ArgumentException($"'{target}' is not a fault target: use 'cluster' or a node name.");
        return Path.Combine(FaultsDir, target + ".json");
    }

    public FaultSettings? ReadFaults(string target) => ReadJson<FaultSettings>(FaultFile(target));

    public void WriteFaults(string target, FaultSettings faults) => WriteJson(FaultFile(target), faults);

    public void DeleteFaults(string target) => File.Delete(FaultFile(target));

    /// <summary>Exclusive lock on the cluster file (flock on Unix), waited for up to 10 s.</summary>
    public IDisposable Lock()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                return new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
        }
    }

    private static T? ReadJson<T>(string path) where T : class
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (!File.Exists(path)) return null;
                return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json);
            }
            catch (FileNotFoundException) { return null; }
            catch (DirectoryNotFoundException) { return null; }
            catch (Exception ex) when ((ex is IOException || ex is JsonException) && attempt < 3)
            {
                Thread.Sleep(5);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    private static void WriteJson<T>(string path, T value)
    {
        var tmp = path + "." + Environment.ProcessId + "." + Environment.CurrentManagedThreadId + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(value, Json));
        File.Move(tmp, path, overwrite: true);
    }
}

public static class NodeStates
{
    public const string Starting = "STARTING";
    public const string Active = "ACTIVE";
    public const string Draining = "DRAINING";
    public const string Terminating = "TERMINATING";
    public const string Offline = "OFFLINE";
    public const string Error = "ERROR";
    public const string RunningFinalizeUpgradeTasks = "RUNNING_FINALIZE_UPGRADE_TASKS";
}

public static class ClusterStates
{
    public const string Stable = "STABLE";
    public const string ReadyToUpgrade = "READY_TO_UPGRADE";
    public const string Mixed = "MIXED";
    public const string ReadyToRunUpgradeTasks = "READY_TO_RUN_UPGRADE_TASKS";
    public const string RunningUpgradeTasks = "RUNNING_UPGRADE_TASKS";
    public const string UpgradeTasksFailed = "UPGRADE_TASKS_FAILED";
}
