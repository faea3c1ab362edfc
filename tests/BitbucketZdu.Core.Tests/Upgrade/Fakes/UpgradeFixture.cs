using System.Collections;
using System.Collections.Concurrent;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Runner;

namespace BitbucketZdu.Core.Tests.Upgrade.Fakes;

/// <summary>Records what the engine says; answers ShouldProcess with <see cref="Allow"/>.</summary>
public sealed class RecordingHost : IOperationHost, IInformationHost
{
    public ConcurrentQueue<string> Messages { get; } = new();
    public ConcurrentQueue<(string target, string action)> Asked { get; } = new();
    public bool Allow { get; set; } = true;
    public List<string> Warnings => Messages.Where(m => m.StartsWith("WARNING: ", StringComparison.Ordinal)).ToList();

    public void Verbose(string message) => Messages.Enqueue("VERBOSE: " + message);
    public void Information(string message, string[]? tags = null) => Messages.Enqueue("INFO: " + message);
    public void Debug(string message) => Messages.Enqueue("DEBUG: " + message);
    public void Warning(string message) => Messages.Enqueue("WARNING: " + message);
    public void Progress(OperationProgress progress) { }

    public bool ShouldProcess(string target, string action)
    {
        Asked.Enqueue((target, action));
        return Allow;
    }
}

/// <summary>A 3-node world on 8.19.3, a profile for it (read through the real reader), a journal folder, helpers.</summary>
public sealed class UpgradeFixture : IDisposable
{
    public const string From = "8.19.3";
    public const string To = "8.19.4";

    public UpgradeFixture(string target = To, params string[] names)
    {
        if (names.Length == 0) names = new[] { "node-1", "node-2", "node-3" };
        Directory = Path.Combine(Path.GetTempPath(), "bbzdu-upg-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        World = new FakeWorld(From, names);
        ArchivePath = Path.Combine(Directory, "atlassian-bitbucket-" + target + ".tar.gz");
        File.WriteAllText(ArchivePath, "pretend release " + target);
        Data = ProfileData(target);
        Journal = new FileJournalStore(Path.Combine(Directory, "journal"), pid => LivePids.Contains(pid));
    }

    public string Directory { get; }
    public FakeWorld World { get; }
    public string ArchivePath { get; }
    public Hashtable Data { get; }
    public FileJournalStore Journal { get; }
    /// <summary>Pids the journal's lock treats as running processes on this host.</summary>
    public HashSet<int> LivePids { get; } = new();
    public RecordingHost Host { get; } = new();

    public ClusterProfile Profile => ClusterProfileReader.Read(Data, Path.Combine(Directory, "prod.psd1"));

    public Hashtable ProfileData(string target)
    {
        var nodes = World.Nodes.Select(n => (object)new Hashtable
        {
            ["Name"] = n.Name,
            ["Url"] = $"http://{n.Ip}:7990/",
            ["Remoting"] = n.Ip,
            ["InstallRoot"] = "/opt/atlassian/bitbucket",
            ["Service"] = "Systemd",
            ["Member"] = "bitbucket/" + n.Name,
        }).ToArray();
        return new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = target,
            ["Archive"] = new Hashtable { ["Path"] = ArchivePath, ["Sha256"] = PreflightCheck.Sha256Of(ArchivePath) },
            ["LoadBalancers"] = new object[] { new Hashtable { ["Name"] = "lb", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9999" } } },
            ["Nodes"] = nodes,
            ["Timeouts"] = new Hashtable { ["StartSeconds"] = 60, ["HealthySeconds"] = 30, ["StableSeconds"] = 30 },
        };
    }

    public RollingUpgradeRunner Runner(IJournalStore? journal = null, FakeProcess? process = null) =>
        new(FakePorts.Create(World, journal ?? Journal, process), Host);

    public static RollingUpgradeOptions Options(int pid, bool resume = false, UpgradeHook? hook = null) =>
        new() { Resume = resume, Hook = hook, Owner = new LockOwner(Environment.MachineName, pid) };

    public Task<IReadOnlyList<JournalEntry>> ReadJournal() => Journal.ReadAsync("prod", CancellationToken.None);

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, true); } catch (IOException) { }
    }
}
