using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Simulator.Launcher;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>
/// A simulated cluster for one test: <see cref="StartAsync"/> goes through the tests' one launcher (TestSupport's
/// <see cref="SimulatedCluster"/>, i.e. bbsim cluster --detach); <see cref="AddNode"/>, <see cref="InstallAsync"/> and
/// <see cref="StartNodeAsync"/> do by hand what an admin does (extract with tar, set BITBUCKET_HOME in
/// bin/set-bitbucket-home.sh, bin/start-bitbucket.sh). Short start delay, heartbeats and grace period. Dispose kills every
/// node it knows (by pid file) and removes the dir.
/// </summary>
public sealed class SimCluster : IAsyncDisposable
{
    public const string User = Canary.UserName;
    public const string Password = Canary.Password;
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly HashSet<int> _started = new();

    private SimCluster(string root)
    {
        Root = root;
        Shared = Path.Combine(root, "shared");
        Directory.CreateDirectory(Shared);
    }

    public string Root { get; }
    public string Shared { get; }
    public List<SimNode> Nodes { get; } = new();

    /// <summary>bbsim.dll beside the tests (the test project references the simulator).</summary>
    public static string BbsimDll => SimulatedCluster.Dll;

    /// <summary>The timings and the extra user every node of a test cluster gets.</summary>
    private const string BaseProperties = "bbsim.users=alice:alice-password";

    /// <summary>Extra bitbucket.properties lines for every node.</summary>
    public string ExtraProperties { get; set; } = "";

    public static SimCluster Create()
    {
        var root = Path.Combine(Path.GetTempPath(), "bbsim-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        return new SimCluster(root);
    }

    /// <summary>A cluster of <paramref name="count"/> nodes on <paramref name="version"/>, STABLE with every node ACTIVE.</summary>
    public static async Task<SimCluster> StartAsync(int count, string version = "8.19.3", string extraProperties = "")
    {
        var c = Create();
        c.ExtraProperties = extraProperties;
        try
        {
            var started = await SimulatedCluster.StartAsync(c.Root, count, version, new ClusterShape
            {
                Ssh = false, Grace = "3s", StartDelay = "100ms", Heartbeat = "150ms", HeartbeatTimeout = "2s", GitDuration = "2s",
                Timeout = $"{Wait.TotalSeconds:0}s", Properties = BaseProperties + "\n" + extraProperties,
            });
            c.Nodes.AddRange(started.Nodes);
            await c.WaitForAsync(x => x.State == ClusterState.STABLE && x.Nodes.Count == count && x.Nodes.All(n => n.State == NodeState.ACTIVE), "a STABLE cluster of ACTIVE nodes");
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    public static Task<(int ExitCode, string Output)> BbsimAsync(params string[] args) => SimulatedCluster.Bbsim(TimeSpan.FromSeconds(60), args);

    /// <summary>The release archive of <paramref name="version"/> (the test run's one "bbsim dist" cache).</summary>
    public async Task<string> DistAsync(string version, string format = "tar.gz") => (await SimulatedCluster.DistArchiveAsync(version, format)).Path;

    public SimNode AddNode(string? properties = null)
    {
        var i = Nodes.Count + 1;
        var dir = Path.Combine(Root, $"node-{i}");
        var port = FreePort.Next();
        var node = new SimNode { Name = $"node-{i}", Port = port, Url = new Uri($"http://127.0.0.1:{port}/"), InstallRoot = dir, Home = Path.Combine(dir, "home") };
        Directory.CreateDirectory(node.Home);
        File.WriteAllText(Path.Combine(node.Home, "bitbucket.properties"), string.Join('\n',
            $"server.port={node.Port}",
            $"node.name={node.Name}",
            $"bitbucket.shared.home={Shared}",
            $"setup.sysadmin.username={User}",
            $"setup.sysadmin.password={Password}",
            BaseProperties,
            "graceful.shutdown.timeout=3s",
            "bbsim.start.delay=100ms",
            "bbsim.heartbeat.interval=150ms",
            "bbsim.heartbeat.timeout=2s",
            ExtraProperties,
            properties ?? "") + "\n");
        Nodes.Add(node);
        return node;
    }

    /// <summary>Extracts <paramref name="version"/> into a NEW directory beside the node's home (tar, as an admin would)
    /// and points its bin/set-bitbucket-home.sh at the home. Returns the install dir.</summary>
    public async Task<string> InstallAsync(SimNode node, string version)
    {
        var archive = await DistAsync(version);
        var (code, output) = await ExternalProcess.RunAsync("tar", new[] { "-xzf", archive, "-C", node.InstallRoot }, TimeSpan.FromSeconds(30));
        Assert.True(code == 0, "tar failed: " + output);
        var install = Path.Combine(node.InstallRoot, "atlassian-bitbucket-" + version);
        var homeScript = Path.Combine(install, "bin", "set-bitbucket-home.sh");
        File.WriteAllText(homeScript, File.ReadAllText(homeScript).Replace("\nBITBUCKET_HOME=\n", $"\nBITBUCKET_HOME={node.Home}\n", StringComparison.Ordinal));
        return install;
    }

    public async Task StartNodeAsync(SimNode node, string installDir)
    {
        node.InstallDir = installDir;
        var (code, output) = await RunAsync(Path.Combine(installDir, "bin", "start-bitbucket.sh"), "--no-search");
        Assert.True(code == 0, $"start-bitbucket.sh of {node.Name} failed ({code}): {output}");
        if (node.Pid is int pid) lock (_started) _started.Add(pid);
    }

    public Task<(int ExitCode, string Output)> StopNodeAsync(SimNode node, IDictionary<string, string>? environment = null) =>
        RunAsync(Path.Combine(node.InstallDir, "bin", "stop-bitbucket.sh"), environment: environment);

    public static Task<(int ExitCode, string Output)> RunAsync(string script, string? arg = null, IDictionary<string, string>? environment = null) =>
        ExternalProcess.RunAsync("bash", arg is null ? new[] { script } : new[] { script, arg }, TimeSpan.FromSeconds(60), environment: environment);

    /// <summary>SIGKILL, as a crash or a power-off would.</summary>
    public static async Task KillAsync(SimNode node)
    {
        var pid = node.Pid!.Value;
        using (var p = Process.GetProcessById(pid)) p.Kill();
        Assert.True(await ProcessControl.WaitForExitAsync(pid, TimeSpan.FromSeconds(10)), $"{node.Name} (pid {pid}) survived SIGKILL");
    }

    /// <param name="retries">The client's retries of failed GETs: 0 to see each answer of the simulator as it is.</param>
    public ZduClient Client(int node = 0, ZduCredential? credential = null, int? retries = null)
    {
        var options = new ZduClientOptions(Nodes[node].Url, credential ?? ZduCredential.Basic(User, Canary.Secure(Password)))
        {
            RequestTimeout = TimeSpan.FromSeconds(10),
        };
        if (retries is int r) options.MaxRetries = r;
        return new ZduClient(options);
    }

    public static HttpClient Http(bool admin = true)
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        if (admin) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(User + ":" + Password)));
        http.DefaultRequestHeaders.Accept.ParseAdd("application/json");
        return http;
    }

    /// <summary>Polls GET /rest/zdu/cluster (on <paramref name="via"/>) until <paramref name="accept"/> holds.</summary>
    public async Task<ZduCluster> WaitForAsync(Func<ZduCluster, bool> accept, string what, int via = 0)
    {
        using var client = Client(via);
        try
        {
            return await Eventually.ValueAsync(() => client.GetClusterAsync(), accept, Wait, what);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + Environment.NewLine + Logs(), ex);
        }
    }

    public string Logs() => string.Join(Environment.NewLine, Nodes.Select(n => $"--- {n.Name} ---{Environment.NewLine}{n.Log}"));

    /// <summary>Sets faults in the shared home (faults/&lt;target&gt;.json), as a rehearsal script would.</summary>
    public void SetFaults(string target, string json) => SimulatedCluster.SetFault(Shared, target, json);

    public async ValueTask DisposeAsync()
    {
        foreach (var n in Nodes)
            if (n.Pid is int pid) lock (_started) _started.Add(pid);
        foreach (var pid in _started)
        {
            try
            {
                if (!ProcessControl.IsAlive(pid) || !IsOurNode(pid)) continue;
                using (var p = Process.GetProcessById(pid)) p.Kill();
                await ProcessControl.WaitForExitAsync(pid, TimeSpan.FromSeconds(10));
            }
            catch (ArgumentException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    private bool IsOurNode(int pid)
    {
        var cmdline = $"/proc/{pid}/cmdline";
        return File.Exists(cmdline) && File.ReadAllText(cmdline).Contains(Root, StringComparison.Ordinal);
    }
}
