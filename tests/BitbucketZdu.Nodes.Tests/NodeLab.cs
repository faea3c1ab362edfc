using System.Management.Automation;
using System.Management.Automation.Runspaces;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Nodes;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>The two ways the module reaches a Linux node over SSH.</summary>
public enum Transport
{
    /// <summary>The plain OpenSSH client and POSIX sh (nodes without PowerShell).</summary>
    Ssh,
    /// <summary>A PowerShell session over SSH (New-PSSession -HostName), POSIX commands through /bin/sh inside it.</summary>
    PSSession,
}

/// <summary>
/// One simulated node in a temp dir, reached over the real sshd: opt/atlassian-bitbucket-OLD (customised: home,
/// JVM memory, JRE home, run-as user), home/ with bitbucket.properties (server.port from FreePort), and dist/ on
/// the "admin host" side with the new version's archive.
/// </summary>
public sealed class NodeLab : IAsyncDisposable
{
    public const string OldVersion = "8.19.1";
    public const string NewVersion = "8.19.2";

    private readonly List<IDisposable> _disposables = new();

    private NodeLab(SshServer ssh, bool simulator)
    {
        Ssh = ssh;
        Simulator = simulator;
        Root = Directory.CreateTempSubdirectory("bbzdu-node-").FullName;
        Opt = Path.Combine(Root, "opt");
        Home = Path.Combine(Root, "home");
        DistDir = Path.Combine(Root, "dist");
        Directory.CreateDirectory(Opt);
        Directory.CreateDirectory(Home);
        HttpPort = FreePort.Next();
        File.WriteAllText(Path.Combine(Home, "bitbucket.properties"), simulator
            ? string.Join('\n', $"server.port={HttpPort}", "node.name=node-1", $"bitbucket.shared.home={Path.Combine(Root, "shared")}",
                $"setup.sysadmin.username={Canary.UserName}", $"setup.sysadmin.password={Canary.Password}", "graceful.shutdown.timeout=1s",
                "bbsim.start.delay=100ms", "bbsim.heartbeat.interval=150ms", "bbsim.heartbeat.timeout=2s") + "\n"
            : $"server.port={HttpPort}\n");
        if (simulator) Directory.CreateDirectory(Path.Combine(Root, "shared"));
        OldDir = Path.Combine(Opt, FixtureDist.RootName(OldVersion));
        NewDir = Path.Combine(Opt, FixtureDist.RootName(NewVersion));
    }

    /// <summary>A node whose install dirs are written by the test fixture (a socat /status responder as the webapp).</summary>
    public static NodeLab Create(SshServer ssh)
    {
        var lab = new NodeLab(ssh, simulator: false);
        FixtureDist.WriteTree(lab.Opt, OldVersion);
        lab.Customise();
        return lab;
    }

    /// <summary>A node running the simulator's distribution ("bbsim dist", extracted with tar): a real simulated Bitbucket node.</summary>
    public static async Task<NodeLab> CreateSimulatedAsync(SshServer ssh)
    {
        var lab = new NodeLab(ssh, simulator: true);
        var (old, _) = await SimulatedCluster.DistArchiveAsync(OldVersion, "tar.gz");
        var (code, output) = await ExternalProcess.RunAsync("tar", new[] { "-xzf", old, "-C", lab.Opt }, TimeSpan.FromSeconds(30));
        if (code != 0) throw new InvalidOperationException("tar failed: " + output);
        lab.Customise();
        return lab;
    }

    private void Customise()
    {        Edit(Path.Combine(OldDir, "bin/set-bitbucket-home.sh"), "BITBUCKET_HOME=\n", $"BITBUCKET_HOME={Home}\n");
        Edit(Path.Combine(OldDir, "bin/_start-webapp.sh"), "JVM_MAXIMUM_MEMORY=1g", "JVM_MAXIMUM_MEMORY=3g");
        Edit(Path.Combine(OldDir, "bin/_start-webapp.sh"), "JVM_SUPPORT_RECOMMENDED_ARGS=", "JVM_SUPPORT_RECOMMENDED_ARGS=\"-Dcom.example.flag=true -XX:+UseG1GC\"");
        Edit(Path.Combine(OldDir, "bin/set-jre-home.sh"), "JRE_HOME=\n", "JRE_HOME=/opt/java/jre17\n");
        Edit(Path.Combine(OldDir, "bin/set-bitbucket-user.sh"), "BITBUCKET_USER=\n", $"BITBUCKET_USER={Environment.UserName}\n");
    }

    public bool Simulator { get; }

    public SshServer Ssh { get; }
    public string Root { get; }
    public string Opt { get; }
    public string Home { get; }
    public string DistDir { get; }
    public string OldDir { get; }
    public string NewDir { get; }
    public int HttpPort { get; }

    public NodeStepOptions Options { get; } = new() { MinimumFreeBytes = 0, CommandTimeout = TimeSpan.FromSeconds(30) };

    /// <summary>The new version's archive with its .sha256 beside it, on the admin host side.</summary>
    public async Task<string> ArchiveAsync(bool zip = false, int paddingBytes = 0)
    {
        if (!Simulator || paddingBytes > 0) return await FixtureDist.WriteArchiveAsync(DistDir, NewVersion, zip, paddingBytes);
        var (built, _) = await SimulatedCluster.DistArchiveAsync(NewVersion, zip ? "zip" : "tar.gz");
        Directory.CreateDirectory(DistDir);
        var copy = Path.Combine(DistDir, Path.GetFileName(built));
        File.Copy(built, copy, true);
        File.Copy(built + ".sha256", copy + ".sha256", true);
        return copy;
    }

    public async Task<INodeShell> ShellAsync(Transport transport)
    {
        INodeShell shell = transport == Transport.Ssh
            ? new SshShell(new SshShellOptions(Ssh.HostName) { Port = Ssh.Port, UserName = Ssh.UserName, KeyFilePath = Ssh.KeyFile, KnownHostsFile = Ssh.KnownHostsFile, ConnectTimeout = TimeSpan.FromSeconds(5) })
            : await PSSessionShell.CreateAsync(OpenPSSession(), null, CancellationToken.None);
        _disposables.Add(shell);
        return shell;
    }

    public NodeSteps Steps(INodeShell shell) => new(shell, Options);

    /// <summary>The simulated node's /rest/zdu client (sysadmin).</summary>
    public BitbucketZdu.Core.Api.ZduClient ZduClient() =>
        new(new BitbucketZdu.Core.Api.ZduClientOptions(new Uri($"http://127.0.0.1:{HttpPort}/"), BitbucketZdu.Core.Api.ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password)))
        {
            RequestTimeout = TimeSpan.FromSeconds(10),
        });

    /// <summary>New-PSSession over SSH, as a user would open it (host key checked against the pinned known_hosts).</summary>
    public PSSession OpenPSSession()
    {
        // The local runspace owns the session: it stays open until the lab is disposed.
        var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
        runspace.Open();
        _disposables.Add(runspace);
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddCommand("New-PSSession").AddParameter("HostName", Ssh.HostName).AddParameter("Port", Ssh.Port).AddParameter("UserName", Ssh.UserName)
            .AddParameter("KeyFilePath", Ssh.KeyFile).AddParameter("Options", new System.Collections.Hashtable { ["UserKnownHostsFile"] = Ssh.KnownHostsFile })
            .AddParameter("ErrorAction", "Stop");
        var session = ps.Invoke<PSSession>().Single();
        return session;
    }

    /// <summary>The parent dir's entries (to prove a failed step left nothing behind).</summary>
    public string[] OptListing() => Directory.GetFileSystemEntries(Opt).Select(Path.GetFileName).Order().ToArray()!;

    /// <summary>Every file under the old install dir with its content, to prove it was never touched.</summary>
    public Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllText);

    /// <summary>What the running node was started with: installDir, args, JVM_MAXIMUM_MEMORY, JRE_HOME.</summary>
    public Dictionary<string, string> StartedWith()
    {
        if (!Simulator)
            return File.ReadAllLines(Path.Combine(Home, "started-with")).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        // The simulated node is "dotnet bbsim.dll node --install <dir> --home <home> [--no-search]" with the JVM settings exported.
        var pid = Pid() ?? throw new InvalidOperationException("no pid file");
        var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var env = File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries).Select(e => e.Split('=', 2)).Where(e => e.Length == 2)
            .GroupBy(e => e[0]).ToDictionary(g => g.Key, g => g.Last()[1]);
        var install = Array.IndexOf(argv, "--install");
        return new Dictionary<string, string>
        {
            ["installDir"] = install >= 0 ? argv[install + 1] : "",
            ["args"] = argv.Contains("--no-search") ? "--no-search" : "",
            ["JVM_MAXIMUM_MEMORY"] = env.GetValueOrDefault("JVM_MAXIMUM_MEMORY", ""),
            ["JRE_HOME"] = env.GetValueOrDefault("JRE_HOME", ""),
        };
    }

    public int? Pid() => File.Exists(Path.Combine(Home, "bitbucket.pid")) && int.TryParse(File.ReadAllText(Path.Combine(Home, "bitbucket.pid")).Trim(), out var p) ? p : null;

    public static bool IsAlive(int pid) => File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ");

    private static void Edit(string path, string from, string to)
    {
        var text = File.ReadAllText(path);
        if (!text.Contains(from)) throw new InvalidOperationException($"{from} not in {path}");
        File.WriteAllText(path, text.Replace(from, to));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables)) d.Dispose();
        if (Pid() is int pid && IsAlive(pid))
        {
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(true); } catch (ArgumentException) { }
        }
        await Task.Yield();
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}
