using System.Globalization;
using System.Management.Automation.Runspaces;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>A live process as /proc shows it.</summary>
public sealed record ProcEntry(int Pid, int ParentPid, char State, string Name, string CommandLine)
{
    public override string ToString() =>
        $"{Pid} ({Name}, parent {ParentPid}, state {State}): {CommandLine.Replace(BitbucketZdu.TestSupport.Canary.Password, "***", StringComparison.Ordinal)}";
}

/// <summary>
/// What the test process holds at one moment, for the soak: its descendant processes and the processes of a lab folder
/// (/proc scan), its file descriptors and TCP sockets (/proc/self/fd matched with /proc/self/net/tcp{,6} by inode),
/// entries of a temp folder, managed memory after full collections, and PowerShell runspaces. Linux only.
/// </summary>
public sealed record LeakSnapshot(
    IReadOnlyList<ProcEntry> Descendants,
    IReadOnlyList<ProcEntry> LabProcesses,
    IReadOnlyList<string> FdTargets,
    IReadOnlyDictionary<string, int> TcpByState,
    IReadOnlyList<string> TempEntries,
    long ManagedBytes,
    int Runspaces,
    int OpenRunspaces,
    int Threads)
{
    public int FileDescriptors => FdTargets.Count;

    /// <summary>What <paramref name="later"/> holds that this snapshot did not, by kind ("socket", "pipe", "anon_inode:[eventfd]", a path), e.g. "socket +2".</summary>
    public string FdGrowthTo(LeakSnapshot later)
    {
        static string Kind(string t) => t.StartsWith("socket:", StringComparison.Ordinal) ? "socket" : t.StartsWith("pipe:", StringComparison.Ordinal) ? "pipe" : t;
        var before = FdTargets.GroupBy(Kind).ToDictionary(g => g.Key, g => g.Count());
        var after = later.FdTargets.GroupBy(Kind).ToDictionary(g => g.Key, g => g.Count());
        var changes = before.Keys.Union(after.Keys).Select(k => (Kind: k, Delta: after.GetValueOrDefault(k) - before.GetValueOrDefault(k)))
            .Where(c => c.Delta != 0).OrderBy(c => c.Kind, StringComparer.Ordinal).Select(c => $"{c.Kind} {(c.Delta > 0 ? "+" : "")}{c.Delta}");
        return string.Join(", ", changes) is { Length: > 0 } s ? s : "none";
    }

    public int Tcp(string state) => TcpByState.GetValueOrDefault(state);

    /// <summary>Temp entries other than the diagnostics IPC of a .NET process that was alive at the snapshot.</summary>
    public IReadOnlyList<string> StrayTempEntries { get; init; } = Array.Empty<string>();

    public string TcpSummary => TcpByState.Count == 0 ? "none" : string.Join(", ", TcpByState.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"));

    /// <summary>File descriptors before the forced collections: a socket or file that was never disposed still counts here (the finalizer has not closed it yet).</summary>
    public int FileDescriptorsBeforeGc { get; init; }

    /// <summary>TCP sockets by state before the forced collections.</summary>
    public IReadOnlyDictionary<string, int> TcpBeforeGc { get; init; } = new Dictionary<string, int>();

    public static LeakSnapshot Take(string labDir, string tempDir)
    {
        var fdsBeforeGc = LeakProbe.FileDescriptors().Count;
        var tcpBeforeGc = LeakProbe.TcpSocketsByState();
        // Twice with finalizers in between: what survives is really referenced (runspaces are tracked by weak references).
        for (var i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        var runspaces = LeakProbe.Runspaces();
        var all = LeakProbe.Processes();
        var temp = LeakProbe.TempEntries(tempDir);
        var live = all.Select(p => p.Pid).ToHashSet();
        return new LeakSnapshot(LeakProbe.DescendantsOf(Environment.ProcessId, all), LeakProbe.OfFolder(labDir, all), LeakProbe.FileDescriptors(),
            LeakProbe.TcpSocketsByState(), temp, managed, runspaces.Count,
            runspaces.Count(r => r.RunspaceStateInfo.State == RunspaceState.Opened), LeakProbe.ThreadCount())
        {
            FileDescriptorsBeforeGc = fdsBeforeGc,
            TcpBeforeGc = tcpBeforeGc,
            StrayTempEntries = temp.Where(e => LeakProbe.RuntimeIpcOwner(e) is not int pid || !live.Contains(pid)).ToList(),
        };
    }
}

public static class LeakProbe
{
    private static readonly string[] TcpStates =
        { "", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING" };

    /// <summary>Every process this user can see; a process that ends while it is read is left out.</summary>
    public static IReadOnlyList<ProcEntry> Processes()
    {
        var list = new List<ProcEntry>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                // /proc/<pid>/stat: "pid (comm) S ppid ..."; comm may hold spaces and parentheses, so split at the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var close = stat.LastIndexOf(')');
                var name = stat[(stat.IndexOf('(') + 1)..close];
                var rest = stat[(close + 2)..].Split(' ');
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                list.Add(new ProcEntry(pid, int.Parse(rest[1], CultureInfo.InvariantCulture), rest[0][0], name, cmdline));
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
            }
        }
        return list;
    }

    /// <summary>Children, grandchildren... of <paramref name="pid"/>.</summary>
    public static IReadOnlyList<ProcEntry> DescendantsOf(int pid, IReadOnlyList<ProcEntry> all)
    {
        var byParent = all.ToLookup(p => p.ParentPid);
        var found = new List<ProcEntry>();
        var queue = new Queue<int>(new[] { pid });
        while (queue.Count > 0)
            foreach (var child in byParent[queue.Dequeue()])
            {
                found.Add(child);
                queue.Enqueue(child.Pid);
            }
        return found;
    }

    /// <summary>Processes whose command line names <paramref name="folder"/> (node processes, the load balancer, a shell left running a node script), and their descendants.</summary>
    public static IReadOnlyList<ProcEntry> OfFolder(string folder, IReadOnlyList<ProcEntry> all)
    {
        var direct = all.Where(p => p.Pid != Environment.ProcessId && p.CommandLine.Contains(folder, StringComparison.Ordinal)).ToList();
        return direct.Concat(direct.SelectMany(p => DescendantsOf(p.Pid, all))).DistinctBy(p => p.Pid).OrderBy(p => p.Pid).ToList();
    }

    /// <summary>The targets of /proc/self/fd ("socket:[123]", "/path", "pipe:[456]", "anon_inode:[eventpoll]").</summary>
    public static IReadOnlyList<string> FileDescriptors()
    {
        var targets = new List<string>();
        foreach (var fd in Directory.EnumerateFiles("/proc/self/fd"))
        {
            try
            {
                targets.Add(new FileInfo(fd).LinkTarget ?? "?");
            }
            catch (IOException)
            {
                // closed while listed
            }
        }
        return targets;
    }

    /// <summary>This process's TCP sockets by state: the inodes of its socket fds looked up in /proc/self/net/tcp and tcp6.</summary>
    public static IReadOnlyDictionary<string, int> TcpSocketsByState()
    {
        var mine = FileDescriptors().Where(t => t.StartsWith("socket:[", StringComparison.Ordinal)).Select(t => t[8..^1]).ToHashSet();
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/self/net/tcp", "/proc/self/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 10 || !mine.Contains(f[9])) continue;
                var st = int.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var state = st < TcpStates.Length ? TcpStates[st] : "0x" + f[3];
                counts[state] = counts.GetValueOrDefault(state) + 1;
            }
        }
        return counts;
    }

    /// <summary>Every file and folder under <paramref name="dir"/>, relative, sorted.</summary>
    public static IReadOnlyList<string> TempEntries(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(e => Path.GetRelativePath(dir, e)).Order(StringComparer.Ordinal).ToList()
            : Array.Empty<string>();

    /// <summary>Every runspace of this process still alive (PowerShell tracks them by weak reference; Get-Runspace reads the same list).</summary>
    public static IReadOnlyList<Runspace> Runspaces()
    {
        var property = typeof(Runspace).GetProperty("RunspaceList", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
            ?? throw new InvalidOperationException("Runspace.RunspaceList (what Get-Runspace reads) is gone from this PowerShell version; count runspaces another way.");
        return ((IEnumerable<Runspace>)property.GetValue(null)!).ToList();
    }

    private static readonly System.Text.RegularExpressions.Regex RuntimeIpc = new(@"^(?:clr-debug-pipe|dotnet-diagnostic)-(?<pid>\d+)-");

    /// <summary>
    /// The pid of the .NET process a temp entry belongs to, if it is that runtime's diagnostics IPC
    /// (clr-debug-pipe-&lt;pid&gt;-*, dotnet-diagnostic-&lt;pid&gt;-*): every running .NET process (each node) keeps them under
    /// the temp path and removes them when it exits; a killed one leaves them.
    /// </summary>
    public static int? RuntimeIpcOwner(string entry) =>
        RuntimeIpc.Match(entry) is { Success: true } m ? int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture) : null;

    public static int ThreadCount()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Threads:", StringComparison.Ordinal));
        return line is null ? -1 : int.Parse(line[8..].Trim(), CultureInfo.InvariantCulture);
    }
}
