using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using BitbucketZdu.Simulator.Cluster;
using BitbucketZdu.Simulator.Dist;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>What "bbsim cluster" writes to &lt;root&gt;/bbsim-cluster.json for "bbsim stop", tests and demos.</summary>
public sealed class ClusterManifest
{
    public int LauncherPid { get; set; }
    public string Version { get; set; } = "";
    public string User { get; set; } = "";
    public string Password { get; set; } = "";
    public string SharedHome { get; set; } = "";
    public List<ManifestNode> Nodes { get; set; } = new();

    public static string PathIn(string root) => Path.Combine(root, "bbsim-cluster.json");
}

public sealed class ManifestNode
{
    public string Name { get; set; } = "";
    public int Port { get; set; }
    /// <summary>The git-over-SSH port (plugin.ssh.port); 0 when the cluster has none.</summary>
    public int SshPort { get; set; }
    public string Url { get; set; } = "";
    public string Home { get; set; } = "";
    public string InstallDir { get; set; } = "";
}

public sealed class ClusterOptions
{
    public int Nodes { get; init; } = 3;
    public required SimVersion Version { get; init; }
    public required string Root { get; init; }
    public int BasePort { get; init; } = 7990;
    /// <summary>Explicit ports, one per node (instead of consecutive ports from <see cref="BasePort"/>).</summary>
    public IReadOnlyList<int>? Ports { get; init; }
    public string User { get; init; } = "admin";
    public string? Password { get; init; }
    public bool Detach { get; init; }
    public string Grace { get; init; } = "30s";
    public string StartDelay { get; init; } = "2s";
    public string Heartbeat { get; init; } = "1s";
    public string HeartbeatTimeout { get; init; } = "5s";
    public bool StableIds { get; init; }
    /// <summary>server.context-path of every node ("" = root).</summary>
    public string ContextPath { get; init; } = "";
    /// <summary>Git-over-SSH ports (plugin.ssh.port), one per node; null = none.</summary>
    public IReadOnlyList<int>? SshPorts { get; init; }
    public string GitDuration { get; init; } = "2s";
    /// <summary>PEM certificate and key: every node serves HTTPS with them.</summary>
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>A file of extra bitbucket.properties lines, appended for every node (its keys win over the options').</summary>
    public string? PropertiesFile { get; init; }
}

/// <summary>
/// "bbsim cluster": builds the distribution, installs every node side by side the way an admin would (extract,
/// set BITBUCKET_HOME in set-bitbucket-home.sh, bitbucket.properties in the home), starts each with
/// bin/start-bitbucket.sh, waits for STABLE, prints how to connect, and stops what it started on Ctrl+C.
/// </summary>
public static class ClusterLauncher
{
    public static async Task<int> RunAsync(ClusterOptions o, TextWriter output)
    {
        var sw = Stopwatch.StartNew();
        var root = Path.GetFullPath(o.Root);
        Directory.CreateDirectory(root);
        if (File.Exists(ClusterManifest.PathIn(root)) && ReadManifest(root)?.Nodes.Any(n => ProcessControl.ReadPid(n.Home) is int p && ProcessControl.IsBbsimNode(p)) == true)
            throw new UsageException($"A simulated cluster is already running under {root}. Stop it first: dotnet bbsim.dll stop --root {root}");
        if (o.Nodes < 1 || o.Nodes > 50) throw new UsageException("--nodes must be between 1 and 50.");
        var ports = o.Ports?.ToList() ?? Enumerable.Range(0, o.Nodes).Select(i => o.BasePort + i).ToList();
        if (ports.Count != o.Nodes) throw new UsageException($"--ports lists {ports.Count} port(s) for {o.Nodes} node(s).");
        if (o.SshPorts is { } ssh && ssh.Count != o.Nodes) throw new UsageException($"--ssh-ports lists {ssh.Count} port(s) for {o.Nodes} node(s).");
        if ((o.TlsCertificate is null) != (o.TlsKey is null)) throw new UsageException("Give --tls-cert and --tls-key together.");
        foreach (var port in ports.Concat(o.SshPorts ?? Array.Empty<int>()))
            if (!FreePort.CanBind(port)) throw new UsageException($"Port {port} on 127.0.0.1 is in use. Choose other ports with --base-port.");

        var password = o.Password ?? Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12)).Replace('+', 'x').Replace('/', 'y');
        var shared = Path.Combine(root, "shared");
        Directory.CreateDirectory(shared);
        var dist = DistBuilder.Build(o.Version, Path.Combine(root, "dist"), "tar.gz", RuntimeLocation.Current())[0];

        var manifest = new ClusterManifest { LauncherPid = Environment.ProcessId, Version = o.Version.ToString(), User = o.User, Password = password, SharedHome = shared };
        for (var i = 1; i <= o.Nodes; i++)
        {
            var nodeDir = Path.Combine(root, $"node-{i}");
            var install = Install(dist, nodeDir);
            var home = Path.Combine(nodeDir, "home");
            Directory.CreateDirectory(home);
            var sshPort = o.SshPorts?[i - 1] ?? 0;
            File.WriteAllText(Path.Combine(home, "bitbucket.properties"), Properties(o, ports[i - 1], sshPort, $"node-{i}", shared, password));
            SetBitbucketHome(install, home);
            var scheme = o.TlsCertificate is null ? "http" : "https";
            manifest.Nodes.Add(new ManifestNode
            {
                Name = $"node-{i}", Port = ports[i - 1], SshPort = sshPort, Url = $"{scheme}://127.0.0.1:{ports[i - 1]}{Node.NodeConfig.ContextPathOf(o.ContextPath)}",
                Home = home, InstallDir = install,
            });
        }
        await File.WriteAllTextAsync(ClusterManifest.PathIn(root), JsonSerializer.Serialize(manifest, SharedStore.Json));

        using var stopRequested = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopRequested.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopRequested.Cancel(); });
        try
        {
            foreach (var n in manifest.Nodes)
            {
                var (code, text) = await RunScriptAsync(Path.Combine(n.InstallDir, "bin", "start-bitbucket.sh"), "--no-search");
                output.Write(text);
                if (code != 0) throw new InvalidOperationException($"{n.Name}: start-bitbucket.sh failed with exit code {code}: {text.Trim()}");
            }
            await WaitStableAsync(manifest, o.Timeout, o.TlsCertificate, stopRequested.Token);
        }
        catch (Exception ex) when (ex is not UsageException)
        {
            output.WriteLine("The cluster did not start: " + ex.Message + " Logs: <root>/node-N/home/log/atlassian-bitbucket.log. Stopping what was started.");
            foreach (var n in manifest.Nodes) output.Write(LogTail(n));
            await StopAsync(root, output);
            return 1;
        }

        output.WriteLine();
        output.WriteLine($"Simulated Bitbucket Data Center {o.Version}: {o.Nodes} node(s) STABLE in {sw.Elapsed.TotalSeconds:0.0} s.");
        foreach (var n in manifest.Nodes) output.WriteLine($"  {n.Name}  {n.Url}{(n.SshPort > 0 ? $"  ssh://127.0.0.1:{n.SshPort}" : "")}  (install {n.InstallDir}, home {n.Home})");
        output.WriteLine($"  user: {o.User}   password: {password}");
        output.WriteLine($"  PowerShell: Connect-BbCluster -Uri {manifest.Nodes[0].Url} -Credential (Get-Credential {o.User})");
        output.WriteLine($"  Stop: Ctrl+C here, or: dotnet {RuntimeLocation.Current().Dll} stop --root {root}");
        if (o.Detach) return 0;

        output.WriteLine("Running. Press Ctrl+C to stop every node.");
        try { await Task.Delay(Timeout.Infinite, stopRequested.Token); } catch (OperationCanceledException) { }
        output.WriteLine("Stopping the cluster...");
        await StopAsync(root, output, stopLauncher: false);
        return 0;
    }

    /// <summary>"bbsim stop": stops every node under the root (by pid file, gracefully, killed after the wait) and the launcher.</summary>
    public static async Task<int> StopAsync(string root, TextWriter output, bool stopLauncher = true)
    {
        root = Path.GetFullPath(root);
        var manifest = ReadManifest(root);
        var homes = new HashSet<string>(manifest?.Nodes.Select(n => n.Home) ?? Enumerable.Empty<string>(), StringComparer.Ordinal);
        if (Directory.Exists(root))
            foreach (var pid in Directory.EnumerateFiles(root, "bitbucket.pid", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 3 }))
                homes.Add(Path.GetDirectoryName(pid)!);
        var lines = await Task.WhenAll(homes.Select(h => ProcessControl.StopNodeAsync(h, WaitFor(h), killAfterWait: true)));
        foreach (var l in lines) output.WriteLine(l);
        if (stopLauncher && manifest is { LauncherPid: > 0 } m && m.LauncherPid != Environment.ProcessId && IsLauncher(m.LauncherPid))
            ProcessControl.Signal(m.LauncherPid, "TERM");
        return 0;
    }

    private static TimeSpan WaitFor(string home)
    {
        var file = Path.Combine(home, "bbsim-grace-seconds");
        var grace = File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), out var g) ? g : 30;
        return TimeSpan.FromSeconds(grace + 10);
    }

    private static bool IsLauncher(int pid)
    {
        var cmdline = $"/proc/{pid}/cmdline";
        return File.Exists(cmdline) && File.ReadAllText(cmdline).Replace('\0', ' ').Contains(" cluster ", StringComparison.Ordinal);
    }

    public static ClusterManifest? ReadManifest(string root)
    {
        var file = ClusterManifest.PathIn(root);
        return File.Exists(file) ? JsonSerializer.Deserialize<ClusterManifest>(File.ReadAllText(file), SharedStore.Json) : null;
    }

    /// <summary>Extracts a distribution archive into <paramref name="targetDir"/>; returns the install dir (its root folder).</summary>
    public static string Install(string archive, string targetDir)
    {
        Directory.CreateDirectory(targetDir);
        if (archive.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
            ZipFile.ExtractToDirectory(archive, targetDir, overwriteFiles: true);
        else
        {
            using var fs = File.OpenRead(archive);
            using var gz = new GZipStream(fs, CompressionMode.Decompress);
            TarFile.ExtractToDirectory(gz, targetDir, overwriteFiles: true);
        }
        var name = Path.GetFileName(archive);
        name = name.EndsWith(".tar.gz", StringComparison.Ordinal) ? name[..^7] : Path.GetFileNameWithoutExtension(name);
        return Path.Combine(targetDir, name);
    }

    /// <summary>What an admin does after extracting: point bin/set-bitbucket-home.sh at the home.</summary>
    public static void SetBitbucketHome(string installDir, string home)
    {
        var file = Path.Combine(installDir, "bin", "set-bitbucket-home.sh");
        var text = File.ReadAllText(file);
        File.WriteAllText(file, Regex.Replace(text, "^BITBUCKET_HOME=.*$", "BITBUCKET_HOME=" + home, RegexOptions.Multiline));
    }

    private static string Properties(ClusterOptions o, int port, int sshPort, string name, string shared, string password)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Written by bbsim cluster. Keys: docs/simulator.md");
        sb.AppendLine($"server.port={port}");
        sb.AppendLine($"node.name={name}");
        sb.AppendLine($"bitbucket.shared.home={shared}");
        sb.AppendLine($"setup.sysadmin.username={o.User}");
        sb.AppendLine($"setup.sysadmin.password={password}");
        sb.AppendLine($"graceful.shutdown.timeout={o.Grace}");
        sb.AppendLine($"bbsim.start.delay={o.StartDelay}");
        sb.AppendLine($"bbsim.heartbeat.interval={o.Heartbeat}");
        sb.AppendLine($"bbsim.heartbeat.timeout={o.HeartbeatTimeout}");
        sb.AppendLine($"bbsim.node.id.stable={(o.StableIds ? "true" : "false")}");
        if (o.ContextPath.Trim('/').Length > 0) sb.AppendLine($"server.context-path={Node.NodeConfig.ContextPathOf(o.ContextPath)}");
        if (sshPort > 0) sb.AppendLine($"plugin.ssh.port={sshPort}");
        sb.AppendLine($"bbsim.git.duration={o.GitDuration}");
        if (o.TlsCertificate is not null) sb.AppendLine($"bbsim.ssl.certificate={Path.GetFullPath(o.TlsCertificate)}");
        if (o.TlsKey is not null) sb.AppendLine($"bbsim.ssl.key={Path.GetFullPath(o.TlsKey)}");
        if (o.PropertiesFile is not null) sb.AppendLine(File.ReadAllText(o.PropertiesFile));
        return sb.ToString();
    }

    public static async Task<(int Code, string Output)> RunScriptAsync(string script, params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("BITBUCKET_HOME");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }

    private static async Task WaitStableAsync(ClusterManifest m, TimeSpan timeout, string? certificate, CancellationToken ct)
    {
        // HTTPS nodes: trust exactly the certificate the nodes were given (the launcher is not the module under test).
        using var handler = new HttpClientHandler();
        if (certificate is not null)
        {
            using var expected = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(certificate));
            var thumbprint = expected.Thumbprint;
            handler.ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == thumbprint;
        }
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(m.User + ":" + m.Password)));
        http.DefaultRequestHeaders.Accept.ParseAdd("application/json");
        var deadline = Stopwatch.StartNew();
        var last = "no answer yet";
        while (deadline.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            // A node that has exited (its port taken, a bad certificate...) never turns ACTIVE: say so now, not at the deadline.
            foreach (var n in m.Nodes)
                if (ProcessControl.ReadPid(n.Home) is { } pid && !ProcessControl.IsAlive(pid))
                    throw new InvalidOperationException($"{n.Name} (pid {pid}) exited while the cluster was starting (last: {last}).");
            try
            {
                using var doc = JsonDocument.Parse(await http.GetStringAsync(m.Nodes[0].Url + "/rest/zdu/cluster", ct));
                var state = doc.RootElement.GetProperty("state").GetString();
                var nodes = doc.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("state").GetString()).ToList();
                last = $"{state}, nodes {string.Join(", ", nodes)}";
                if (nodes.Contains(NodeStates.Error)) throw new InvalidOperationException("A node is in ERROR: " + last + ".");
                if (state == ClusterStates.Stable && nodes.Count == m.Nodes.Count && nodes.All(s => s == NodeStates.Active)) return;
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                last = "request timed out";
            }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"The cluster was not STABLE with {m.Nodes.Count} ACTIVE node(s) within {timeout.TotalSeconds:0} s (last: {last}).");
    }

    /// <summary>The last lines of a node's log, for a start that failed: what the caller needs without opening files.</summary>
    private static string LogTail(ManifestNode n, int lines = 8)
    {
        var log = Path.Combine(n.Home, "log", "atlassian-bitbucket.log");
        if (!File.Exists(log)) return $"  {n.Name}: no log yet ({log})" + Environment.NewLine;
        string[] all;
        try { all = File.ReadAllLines(log); }
        catch (IOException ex) { return $"  {n.Name}: log unreadable: {ex.Message}" + Environment.NewLine; }
        var sb = new StringBuilder($"  {n.Name}, last lines of {log}:" + Environment.NewLine);
        // Stack frames say little to whoever reads this; the exception's own lines say why.
        var told = all.Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal) && !l.TrimStart().StartsWith("---", StringComparison.Ordinal)).ToList();
        foreach (var l in told.Skip(Math.Max(0, told.Count - lines))) sb.AppendLine("    " + l);
        return sb.ToString();
    }
}
