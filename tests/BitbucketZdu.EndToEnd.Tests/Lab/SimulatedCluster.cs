using System.Text.Json;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>A node of the simulated cluster, as bbsim-cluster.json describes it.</summary>
public sealed record SimNode(string Name, int Port, Uri Url, string Home, string InstallDir, string InstallRoot, int SshPort = 0);

/// <summary>What the simulated cluster looks like beyond its size: git over SSH, a context path, HTTPS.</summary>
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
}

/// <summary>
/// <c>bbsim cluster --detach</c> on free ports in its own folder (real node processes started by the dist's bin scripts),
/// with the canary sysadmin; stopped with <c>bbsim stop --root</c> on dispose.
/// </summary>
public sealed class SimulatedCluster : IAsyncDisposable
{
    private static readonly string DistCache = Directory.CreateTempSubdirectory("bbzdu-e2e-dist-").FullName;
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

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "bbsim.dll");

    public static async Task<SimulatedCluster> StartAsync(string root, int nodes, string version, ClusterShape? shape = null)
    {
        shape ??= new ClusterShape { Ssh = false };
        var ports = Enumerable.Range(0, nodes).Select(_ => FreePort.Next()).ToArray();
        var args = new List<string>
        {
            "cluster", "--nodes", nodes.ToString(), "--version", version, "--root", root,
            "--ports", string.Join(",", ports), "--detach", "--grace", "1s", "--start-delay", "500ms", "--heartbeat", "500ms", "--heartbeat-timeout", "3s",
            // bbsim's own deadline comes first, so its report (which node, its last log lines) reaches the test's message.
            "--timeout", "60s",
            "--user", Canary.UserName, "--password", Canary.Password, "--git-duration", shape.GitDuration,
        };
        if (shape.Ssh) args.AddRange(new[] { "--ssh-ports", string.Join(",", Enumerable.Range(0, nodes).Select(_ => FreePort.Next())) });
        if (shape.ContextPath.Length > 0) args.AddRange(new[] { "--context-path", shape.ContextPath });
        if (shape.StableIds) args.Add("--stable-ids");
        if (shape.TlsCertificate is not null) args.AddRange(new[] { "--tls-cert", shape.TlsCertificate, "--tls-key", shape.TlsKey! });
        var (code, output) = await Bbsim(TimeSpan.FromSeconds(90), args.ToArray());
        if (code != 0)
        {
            await Bbsim(TimeSpan.FromSeconds(60), "stop", "--root", root);
            throw new InvalidOperationException("bbsim cluster failed: " + Scrub(output));
        }
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "bbsim-cluster.json")));
        var list = manifest.RootElement.GetProperty("nodes").EnumerateArray().Select(n => new SimNode(n.GetProperty("name").GetString()!,
            n.GetProperty("port").GetInt32(), new Uri(n.GetProperty("url").GetString()!.TrimEnd('/') + "/"), n.GetProperty("home").GetString()!,
            n.GetProperty("installDir").GetString()!, Path.GetDirectoryName(n.GetProperty("installDir").GetString()!)!,
            n.TryGetProperty("sshPort", out var ssh) ? ssh.GetInt32() : 0)).ToList();
        return new SimulatedCluster(root, list, manifest.RootElement.GetProperty("sharedHome").GetString()!);
    }

    /// <summary>The release archive of <paramref name="version"/> and its SHA-256 (<c>bbsim dist</c>, built once per test run).</summary>
    public static async Task<(string Path, string Sha256)> DistAsync(string version)
    {
        var file = Path.Combine(DistCache, $"atlassian-bitbucket-{version}.tar.gz");
        await DistGate.WaitAsync();
        try
        {
            if (!File.Exists(file + ".sha256"))
            {
                var (code, output) = await Bbsim(TimeSpan.FromSeconds(60), "dist", "--version", version, "--output", DistCache, "--format", "tar.gz");
                if (code != 0) throw new InvalidOperationException("bbsim dist failed: " + output);
            }
            return (file, File.ReadAllText(file + ".sha256").Split(' ')[0].Trim());
        }
        finally
        {
            DistGate.Release();
        }
    }

    /// <summary>Sets a node's (or <c>cluster</c>'s) fault settings: the JSON file every node reads at each heartbeat.</summary>
    public void SetFault(string target, string json)
    {
        var dir = Path.Combine(SharedHome, "bbsim", "faults");
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, "." + target + ".tmp");
        File.WriteAllText(tmp, json);
        File.Move(tmp, Path.Combine(dir, target + ".json"), overwrite: true);
    }

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
