using System.Collections;
using System.Diagnostics;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>The soak runs alone: its file-descriptor, socket, thread and memory figures are of this process, so no other test may run beside it.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SoakCollection
{
    public const string Name = "Soak (runs alone)";
}

/// <summary>
/// Repeated full upgrades through successive bug-fix versions, in one PowerShell session as an admin runs them, on a
/// 2-node cluster behind HAProxy under steady user traffic. After each round: STABLE on the new version, every node in
/// rotation, no failed user request, exactly one node process per node and nothing half-done on disk. Between the end of
/// round 1 (warm-up: the module loaded, pools and caches filled) and the end of the last round nothing may grow beyond a
/// stated bound: processes, file descriptors, TCP sockets, temp files, managed memory, runspaces.
/// </summary>
[Collection(SoakCollection.Name)]
public sealed class SoakTests
{
    private static readonly string[] Versions = { "8.19.3", "8.19.4", "8.19.5", "8.19.6", "8.19.7", "8.19.8", "8.19.9", "8.19.10" };
    private const int Nodes = 2;

    // Bounds between the end of round 1 and the end of the last round (see docs/end-to-end-tests.md).
    private const int FdGrowthPerRound = 2;
    private const int EstablishedGrowthPerRound = 1;
    private const int MaxCloseWait = 2 * Nodes; // a pooled keep-alive connection per node and static client, until the pool scavenges it
    private const long ManagedGrowthPerRound = 512 * 1024;

    private readonly ITestOutputHelper _output;

    public SoakTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public Task Repeated_rolling_upgrades_leak_no_process_socket_temp_file_or_memory() =>
        SoakAsync("Invoke-BbRollingUpgrade, local", Versions, (lab, profile) => lab.InvokeRollingUpgradeAsync(profile: profile));

    /// <summary>
    /// Upgrades the lab's cluster through <paramref name="versions"/> one round at a time with <paramref name="upgrade"/>,
    /// checks the lab after each round, snapshots after round 1 and after the last, and records rows under <paramref name="variant"/>.
    /// </summary>
    private async Task SoakAsync(string variant, string[] versions, Func<E2eLab, Hashtable, Task<UpgradeRun>> upgrade)
    {
        var total = Stopwatch.StartNew();
        var laterDists = versions.Skip(2).Select(SimulatedCluster.DistAsync).ToArray(); // built while the lab starts
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Nodes = Nodes, From = versions[0], To = versions[1] });
        // Everything the module, the engine, PowerShell and their children create under the temp path lands here.
        var temp = Path.Combine(lab.Dir, "tmp");
        Directory.CreateDirectory(temp);
        var savedTmp = Environment.GetEnvironmentVariable("TMPDIR");
        Environment.SetEnvironmentVariable("TMPDIR", temp + "/");
        var rows = new List<SoakRow>();
        var area = "soak (" + variant + ")";
        try
        {
            Assert.StartsWith(temp, Path.GetTempPath());
            LeakSnapshot? first = null;
            var failedBefore = 0;
            var requestsBefore = 0;
            for (var round = 1; round < versions.Length; round++)
            {
                string from = versions[round - 1], to = versions[round];
                var (archive, sha) = round == 1 ? (lab.ArchivePath, lab.ArchiveSha256) : await laterDists[round - 2];
                var profile = lab.Profile();
                profile["TargetVersion"] = to;
                profile["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = sha };

                var run = await upgrade(lab, profile);
                lab.Print($"{variant}, round {round}: {from} -> {to}", run);
                Assert.True(run.Succeeded, $"round {round}: {run.ErrorId}: {run.ErrorMessage}");
                Assert.Equal(Nodes, run.Report!.NodesUpgraded);
                Assert.All(run.Report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
                Assert.Equal("STABLE", run.Report.FinalState);
                await lab.AssertClusterOnAsync(to);
                await lab.AssertAllInRotationAsync();
                int requests = lab.Load.Total - requestsBefore, failed = lab.Load.Failed - failedBefore;
                Assert.True(failed == 0, $"round {round}: {failed} of {requests} user requests failed: {lab.Load.FailureSummary}");
                Assert.True(requests > 20, $"round {round}: only {requests} user requests: the load did not run through the upgrade");
                var disk = await AssertLabAsDesignedAsync(lab, versions[..(round + 1)]);
                rows.Add(new SoakRow($"{variant}: round {round}, {from} -> {to}", area, SoakReport.Upgraded, null,
                    $"{run.Report.Summary} {disk}", requests, failed));
                requestsBefore = lab.Load.Total;
                failedBefore = lab.Load.Failed;
                if (round == 1) first = Snapshot(lab, temp, "after round 1 (warm-up)");
            }
            var last = Snapshot(lab, temp, $"after round {versions.Length - 1}");
            var checks = LeakChecks(first!, last, versions.Length - 2);
            rows.AddRange(checks.Select(c => new SoakRow($"{variant}: leak check, {c.What}", area, c.Ok ? SoakReport.NoLeak : SoakReport.Leak, null, c.Figures, null, null)));
            foreach (var c in checks) _output.WriteLine($"{(c.Ok ? "ok  " : "LEAK")} {c.What}: {c.Figures}");
            SoakReport.Record(area, rows);
            _output.WriteLine($"soak ({variant}): {versions.Length - 1} upgrades in {total.Elapsed.TotalSeconds:0.0} s; {lab.Load.Total} user requests, {lab.Load.Failed} failed");
            Assert.All(checks, c => Assert.True(c.Ok, $"{c.What}: {c.Figures}"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("TMPDIR", savedTmp);
        }
    }

    /// <summary>The probes the soak relies on see each kind of leak: a child process, sockets, a stray temp file, memory, a runspace.</summary>
    [Fact]
    public async Task Leak_probe_sees_a_child_process_sockets_temp_files_memory_and_a_runspace()
    {
        var dir = Directory.CreateTempSubdirectory("bbzdu-soak-probe-").FullName;
        var temp = Directory.CreateDirectory(Path.Combine(dir, "tmp")).FullName;
        try
        {
            var before = LeakSnapshot.Take(dir, temp);
            await using var child = ExternalProcess.Start("/bin/sh", new[] { "-c", "sleep 60 # " + dir });
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
            using var server = await listener.AcceptTcpClientAsync();
            File.WriteAllText(Path.Combine(temp, "left.tmp"), "x");
            File.WriteAllText(Path.Combine(temp, $"dotnet-diagnostic-{Environment.ProcessId}-1-socket"), ""); // this process's: not stray
            File.WriteAllText(Path.Combine(temp, "clr-debug-pipe-999999999-1-in"), ""); // above any pid_max: a dead process's, stray
            var held = new byte[16 * 1024 * 1024];
            using var runspace = System.Management.Automation.Runspaces.RunspaceFactory.CreateRunspace();
            runspace.Open();

            var after = LeakSnapshot.Take(dir, temp);
            Assert.Contains(after.Descendants, p => p.Pid == child.Id);
            Assert.Contains(after.LabProcesses, p => p.Pid == child.Id);
            Assert.DoesNotContain(before.Descendants, p => p.Pid == child.Id);
            Assert.True(after.FileDescriptors >= before.FileDescriptors + 3, $"fds {before.FileDescriptors} -> {after.FileDescriptors}");
            Assert.True(after.Tcp("ESTABLISHED") >= before.Tcp("ESTABLISHED") + 2, $"TCP {before.TcpSummary} -> {after.TcpSummary}");
            Assert.True(after.Tcp("LISTEN") >= before.Tcp("LISTEN") + 1, $"TCP {before.TcpSummary} -> {after.TcpSummary}");
            Assert.Equal(new[] { "clr-debug-pipe-999999999-1-in", "left.tmp" }, after.StrayTempEntries);
            Assert.Equal(3, after.TempEntries.Count);
            Assert.True(after.ManagedBytes >= before.ManagedBytes + held.Length, $"managed {before.ManagedBytes} -> {after.ManagedBytes}");
            Assert.Equal(before.Runspaces + 1, after.Runspaces);
            Assert.Equal(before.OpenRunspaces + 1, after.OpenRunspaces);
            GC.KeepAlive(held);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed record LeakCheck(string What, bool Ok, string Figures);

    private LeakSnapshot Snapshot(E2eLab lab, string temp, string when)
    {
        var s = LeakSnapshot.Take(lab.Dir, temp);
        _output.WriteLine($"{when}: {s.Descendants.Count} descendant process(es) [{string.Join(", ", s.Descendants.Select(p => p.Name))}], "
            + $"{s.LabProcesses.Count} lab process(es), {s.FileDescriptors} fds ({s.FileDescriptorsBeforeGc} before GC), TCP {s.TcpSummary} "
            + $"(before GC: {string.Join(", ", s.TcpBeforeGc.Select(kv => $"{kv.Key} {kv.Value}"))}), {s.TempEntries.Count} temp entries, "
            + $"managed {Mb(s.ManagedBytes)}, {s.Runspaces} runspace(s) ({s.OpenRunspaces} open), {s.Threads} threads");
        return s;
    }

    /// <summary>First (after round 1) against last; <paramref name="rounds"/> is the number of rounds in between.</summary>
    private static List<LeakCheck> LeakChecks(LeakSnapshot first, LeakSnapshot last, int rounds)
    {
        var firstPids = first.Descendants.Select(p => p.Pid).ToHashSet();
        var newChildren = last.Descendants.Where(p => !firstPids.Contains(p.Pid)).ToList();
        var zombies = last.Descendants.Where(p => p.State == 'Z').ToList();
        var fdGrowth = last.FileDescriptors - first.FileDescriptors;
        var fdGrowthBeforeGc = last.FileDescriptorsBeforeGc - first.FileDescriptorsBeforeGc;
        var estGrowth = last.Tcp("ESTABLISHED") - first.Tcp("ESTABLISHED");
        var newTemp = last.StrayTempEntries.Except(first.StrayTempEntries).ToList();
        var memGrowth = last.ManagedBytes - first.ManagedBytes;
        return new List<LeakCheck>
        {
            new("processes",
                newChildren.Count == 0 && zombies.Count == 0 && last.LabProcesses.Count == first.LabProcesses.Count,
                $"descendants of the test process {first.Descendants.Count} -> {last.Descendants.Count}, new since round 1 {newChildren.Count}"
                + $"{List(newChildren)}, zombies {zombies.Count}{List(zombies)}; lab processes {first.LabProcesses.Count} -> {last.LabProcesses.Count} "
                + $"(one node process per node by its pid file, plus haproxy; nothing else, checked after every round)"),
            new("file descriptors",
                fdGrowth <= FdGrowthPerRound * rounds && fdGrowthBeforeGc <= FdGrowthPerRound * rounds,
                $"{first.FileDescriptors} -> {last.FileDescriptors} ({Signed(fdGrowth)}), before the forced GC (undisposed but unreachable handles still open) "
                + $"{first.FileDescriptorsBeforeGc} -> {last.FileDescriptorsBeforeGc} ({Signed(fdGrowthBeforeGc)}); changed kinds: {first.FdGrowthTo(last)}; bound +{FdGrowthPerRound} per round = +{FdGrowthPerRound * rounds} over {rounds} rounds"),
            new("TCP sockets",
                estGrowth <= EstablishedGrowthPerRound * rounds && last.Tcp("CLOSE_WAIT") <= MaxCloseWait,
                $"ESTABLISHED {first.Tcp("ESTABLISHED")} -> {last.Tcp("ESTABLISHED")} ({Signed(estGrowth)}; bound +{EstablishedGrowthPerRound * rounds}), "
                + $"CLOSE_WAIT {first.Tcp("CLOSE_WAIT")} -> {last.Tcp("CLOSE_WAIT")} (bound {MaxCloseWait}); all: {first.TcpSummary} -> {last.TcpSummary}"),
            new("temp files",
                newTemp.Count == 0,
                $"entries under the temp path (TMPDIR of the test process and its children) {first.TempEntries.Count} -> {last.TempEntries.Count}, of which "
                + $"{last.TempEntries.Count - last.StrayTempEntries.Count} are the .NET diagnostics IPC of live node processes; others {last.StrayTempEntries.Count}{List(last.StrayTempEntries)}, "
                + $"new since round 1 {newTemp.Count}{List(newTemp)}; "
                + "no .bbzdu-staging, .bbzdu-extract-*, *.bbzdu-tmp, *.part or journal lock left in the lab after any round"),
            new("memory and runspaces",
                memGrowth <= ManagedGrowthPerRound * rounds && last.Runspaces <= first.Runspaces && last.OpenRunspaces <= first.OpenRunspaces,
                $"managed heap after full GC {Mb(first.ManagedBytes)} -> {Mb(last.ManagedBytes)} ({Signed(memGrowth / 1048576.0, "0.00")} MB; bound +{Mb(ManagedGrowthPerRound)} per round = +{Mb(ManagedGrowthPerRound * rounds)}), "
                + $"runspaces {first.Runspaces} -> {last.Runspaces} ({first.OpenRunspaces} -> {last.OpenRunspaces} open; bound: no growth), threads {first.Threads} -> {last.Threads}"),
        };
    }

    /// <summary>
    /// The lab after a round is exactly what the design says: one node process per node (its pid file's, running from the
    /// new version's install dir) and haproxy, nothing else; one install dir per version so far on each node (the engine
    /// removes none: each old one stays for rollback); no staging, extraction, temp-write or partial-download leftovers;
    /// the journal folder holds the journal and no lock. Returns the disk figures for the round's row.
    /// </summary>
    private static async Task<string> AssertLabAsDesignedAsync(E2eLab lab, string[] versionsSoFar)
    {
        var current = versionsSoFar[^1];
        // A process on its way out (a stop script's shell) gets a few seconds; one that stays is a leak.
        IReadOnlyList<ProcEntry> all = Array.Empty<ProcEntry>(), labProcesses = Array.Empty<ProcEntry>();
        try
        {
            await Eventually.UntilAsync(() =>
            {
                all = LeakProbe.Processes();
                labProcesses = LeakProbe.OfFolder(lab.Dir, all);
                return labProcesses.Count == lab.Cluster.Nodes.Count + 1;
            }, TimeSpan.FromSeconds(5), "only the node processes and haproxy left in the lab");
        }
        catch (TimeoutException)
        {
            // the assertions below say which
        }
        var expected = new HashSet<int>();
        foreach (var node in lab.Cluster.Nodes)
        {
            var pid = int.Parse(File.ReadAllText(Path.Combine(node.Home, "bitbucket.pid")).Trim());
            var process = all.SingleOrDefault(p => p.Pid == pid);
            Assert.True(process is not null, $"{node.Name}: pid {pid} of its pid file is not running");
            Assert.Contains(Path.Combine(node.InstallRoot, "atlassian-bitbucket-" + current), process!.CommandLine);
            expected.Add(pid);
        }
        var haproxy = labProcesses.Where(p => p.Name == "haproxy").ToList();
        Assert.Single(haproxy);
        expected.Add(haproxy[0].Pid);
        var unexpected = labProcesses.Where(p => !expected.Contains(p.Pid)).ToList();
        Assert.True(unexpected.Count == 0, "processes left behind in the lab: " + string.Join("; ", unexpected));

        foreach (var node in lab.Cluster.Nodes)
        {
            var dirs = Directory.GetDirectories(node.InstallRoot, "atlassian-bitbucket-*").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(versionsSoFar.Select(v => "atlassian-bitbucket-" + v).Order(StringComparer.Ordinal), dirs);
            foreach (var d in dirs) Assert.True(File.Exists(Path.Combine(node.InstallRoot, d!, "bin", "start-bitbucket.sh")), $"{node.Name}: {d} is incomplete");
        }
        var leftovers = Directory.EnumerateFileSystemEntries(lab.Cluster.Root, "*", SearchOption.AllDirectories)
            .Where(e => Path.GetFileName(e) is var n && (n.StartsWith(".bbzdu-staging", StringComparison.Ordinal) || n.StartsWith(".bbzdu-extract-", StringComparison.Ordinal)
                || n.EndsWith(".bbzdu-tmp", StringComparison.Ordinal) || n.EndsWith(".part", StringComparison.Ordinal)))
            .ToList();
        Assert.True(leftovers.Count == 0, "half-done files left by the upgrade: " + string.Join(", ", leftovers));
        var journal = Directory.GetFileSystemEntries(lab.JournalDir).Select(Path.GetFileName).ToArray();
        Assert.Equal(new[] { Path.GetFileName(lab.JournalFile) }, journal);
        return $"Install dirs per node: {versionsSoFar.Length}; journal {new FileInfo(lab.JournalFile).Length / 1024.0:0.0} KB.";
    }

    private static string List<T>(IReadOnlyCollection<T> items) => items.Count == 0 ? "" : " (" + string.Join("; ", items) + ")";
    private static string Mb(long bytes) => $"{bytes / 1048576.0:0.00} MB";
    private static string Signed(double v, string format = "0") => (v >= 0 ? "+" : "") + v.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
}
