using System.Globalization;
using System.Text.Json;

namespace BitbucketZdu.TestSupport;

/// <summary>A node of a simulated cluster, as bbsim-cluster.json describes it (or as a test added it by hand).</summary>
public sealed class SimNode
{
    public required string Name { get; init; }
    public required int Port { get; init; }
    /// <summary>The node's base URL with scheme, context path and a trailing slash.</summary>
    public required Uri Url { get; init; }
    public required string Home { get; init; }
    /// <summary>The install directory the node currently runs from (a test that upgrades a node by hand moves it).</summary>
    public string InstallDir { get; set; } = "";
    /// <summary>The node's folder: its home and its install directories side by side.</summary>
    public required string InstallRoot { get; init; }
    public int SshPort { get; init; }

    public int? Pid => File.Exists(Path.Combine(Home, "bitbucket.pid")) ? int.Parse(File.ReadAllText(Path.Combine(Home, "bitbucket.pid")).Trim(), CultureInfo.InvariantCulture) : null;
    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "(no log)";
    private string LogFile => Path.Combine(Home, "log", "atlassian-bitbucket.log");
}

/// <summary>What the simulated cluster looks like beyond its size: timings, git over SSH, a context path, HTTPS.</summary>
public sealed class ClusterShape
{
    /// <summary>A git-over-SSH port per node (plugin.ssh.port).</summary>
    public bool Ssh { get; init; } = true;
    /// <summary>How long a clone streams, over SSH and under /scm.</summary>
    public string GitDuration { get; init; } = "1500ms";
    /// <summary>server.context-path ("" = root).</summary>
    public string ContextPath { get; init; } = "";
    /// <summary>PEM certificate and key the nodes serve HTTPS with (null = plain HTTP).</summary>
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    /// <summary>Node ids kept across restarts (bbsim --stable-ids); by default a node gets a new id at each start.</summary>
    public bool StableIds { get; init; }
    public string Grace { get; init; } = "1s";
    public string StartDelay { get; init; } = "500ms";
    public string Heartbeat { get; init; } = "500ms";
    public string HeartbeatTimeout { get; init; } = "3s";
    /// <summary>bbsim's own deadline for STABLE; it comes first, so its report (which node, its last log lines) reaches the test's message.</summary>
    public string Timeout { get; init; } = "60s";
    /// <summary>Extra bitbucket.properties lines for every node (bbsim --properties; their keys win).</summary>
    public string Properties { get; init; } = "";
}

/// <summary>
/// The one simulated-cluster launcher of the tests: <c>bbsim cluster --detach</c> on free ports in its own folder (real
/// node processes started by the dist's bin scripts), with the canary sysadmin; stopped with <c>bbsim stop --root</c> on
/// dispose. <see cref="DistAsync"/> is the one distribution cache of a test run.
/// </summary>
public sealed class SimulatedCluster : IAsyncDisposable
{
    private static readonly string DistCache = Directory.CreateTempSubdirectory("bbzdu-dist-").FullName;
    private static readonly SemaphoreSlim DistGate = new(1, 1);

    private SimulatedCluster(string root, IReadOnlyList<SimNode> nodes, string sharedHome)
    {
        Root = root;
        Nodes = nodes;
        SharedHome = sharedHome;
    }

    public string Root { get; }
    public IReadOnlyList<SimNode> Nodes { get; }
    public string SharedHome { get; }

    /// <summary>bbsim.dll beside the tests (TestSupport references the simulator).</summary>
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "bbsim.dll");

    public static async Task<SimulatedCluster> StartAsync(string root, int nodes, string version, ClusterShape? shape = null)
    {
        shape ??= new ClusterShape { Ssh = false };
        var ports = Enumerable.Range(0, nodes).Select(_ => FreePort.Next()).ToArray();
        var args = new List<string>
        {
            "cluster", "--nodes", nodes.ToString(CultureInfo.InvariantCulture), "--version", version, "--root", root,
            "--ports", string.Join(",", ports), "--detach", "--grace", shape.Grace, "--start-delay", shape.StartDelay,
            "--heartbeat", shape.Heartbeat, "--heartbeat-timeout", shape.HeartbeatTimeout, "--timeout", shape.Timeout,
            "--user", Canary.UserName, "--password", Canary.Password, "--git-duration", shape.GitDuration,
        };
        if (shape.Ssh) args.AddRange(new[] { "--ssh-ports", string.Join(",", Enumerable.Range(0, nodes).Select(_ => FreePort.Next())) });
        if (shape.ContextPath.Length > 0) args.AddRange(new[] { "--context-path", shape.ContextPath });
        if (shape.StableIds) args.Add("--stable-ids");
        if (shape.TlsCertificate is not null) args.AddRange(new[] { "--tls-cert", shape.TlsCertificate, "--tls-key", shape.TlsKey! });
        if (shape.Properties.Length > 0)
        {
            Directory.CreateDirectory(root);
            var file = Path.Combine(root, "extra.properties");
            File.WriteAllText(file, shape.Properties + "\n");
            args.AddRange(new[] { "--properties", file });
        }
        var (code, output) = await Bbsim(TimeSpan.FromSeconds(90), args.ToArray());
        if (code != 0)
        {
            await Bbsim(TimeSpan.FromSeconds(60), "stop", "--root", root);
            throw new InvalidOperationException("bbsim cluster failed: " + Scrub(output));
        }
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "bbsim-cluster.json")));
        var list = manifest.RootElement.GetProperty("nodes").EnumerateArray().Select(n => new SimNode
        {
            Name = n.GetProperty("name").GetString()!,
            Port = n.GetProperty("port").GetInt32(),
            Url = new Uri(n.GetProperty("url").GetString()!.TrimEnd('/') + "/"),
            Home = n.GetProperty("home").GetString()!,
            InstallDir = n.GetProperty("installDir").GetString()!,
            InstallRoot = Path.GetDirectoryName(n.GetProperty("installDir").GetString()!)!,
            SshPort = n.TryGetProperty("sshPort", out var ssh) ? ssh.GetInt32() : 0,
        }).ToList();
        return new SimulatedCluster(root, list, manifest.RootElement.GetProperty("sharedHome").GetString()!);
    }

    /// <summary>The release archive of <paramref name="version"/> and its SHA-256 (<c>bbsim dist</c>, built once per test run).</summary>
    public static Task<(string Path, string Sha256)> DistAsync(string version) => DistArchiveAsync(version, "tar.gz");

    /// <inheritdoc cref="DistAsync(string)"/>
    public static async Task<(string Path, string Sha256)> DistArchiveAsync(string version, string format)
    {
        var file = Path.Combine(DistCache, $"atlassian-bitbucket-{version}.{format}");
        await DistGate.WaitAsync();
        try
        {
            if (!File.Exists(file + ".sha256"))
            {
                var (code, output) = await Bbsim(TimeSpan.FromSeconds(60), "dist", "--version", version, "--output", DistCache, "--format", format);
                if (code != 0 || !File.Exists(file)) throw new InvalidOperationException("bbsim dist failed: " + output);
            }
            return (file, File.ReadAllText(file + ".sha256").Split(' ')[0].Trim());
        }
        finally
        {
            DistGate.Release();
        }
    }

    /// <summary>Sets a node's (or <c>cluster</c>'s) fault settings: the JSON file every node reads at each heartbeat.</summary>
    public static void SetFault(string sharedHome, string target, string json)
    {
        var dir = Path.Combine(sharedHome, "bbsim", "faults");
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, "." + target + ".tmp");
        File.WriteAllText(tmp, json);
        File.Move(tmp, Path.Combine(dir, target + ".json"), overwrite: true);
    }

    /// <inheritdoc cref="SetFault(string, string, string)"/>
    public void SetFault(string target, string json) => SetFault(SharedHome, target, json);

    public void ClearFault(string target) => File.Delete(Path.Combine(SharedHome, "bbsim", "faults", target + ".json"));

    public static Task<(int ExitCode, string Output)> Bbsim(TimeSpan timeout, params string[] args) =>
        ExternalProcess.RunAsync(Pwsh.DotnetPath, new[] { Dll }.Concat(args), timeout);

    private static string Scrub(string text) => text.Replace(Canary.Password, "***");

    public async ValueTask DisposeAsync()
    {
        // A hung node (hangOnStop) is killed by 'stop' after grace + 10 s; clear faults first so a stop is a stop.
        try { Directory.Delete(Path.Combine(SharedHome, "bbsim", "faults"), true); } catch (IOException) { }
        await Bbsim(TimeSpan.FromSeconds(60), "stop", "--root", Root);
    }
}
