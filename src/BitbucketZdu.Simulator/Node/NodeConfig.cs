using System.Globalization;
using BitbucketZdu.Simulator.Cluster;

namespace BitbucketZdu.Simulator.Node;

/// <summary>
/// A node's configuration: <c>$BITBUCKET_HOME/bitbucket.properties</c> plus the version of the install directory
/// it was started from (the <c>app/WEB-INF/lib/bitbucket-api-X.Y.Z.jar</c> marker). See docs/simulator.md for the keys.
/// </summary>
public sealed class NodeConfig
{
    public required string Home { get; init; }
    public required string InstallDir { get; init; }
    public required SimVersion Version { get; init; }
    public required int Port { get; init; }
    public required string NodeName { get; init; }
    public required string SharedHome { get; init; }
    public required string IpAddress { get; init; }
    public required int ClusterPort { get; init; }
    public required string AdminUser { get; init; }
    public required string AdminPassword { get; init; }
    /// <summary>Users that authenticate but are not system administrators (403 on /rest/zdu).</summary>
    public required IReadOnlyDictionary<string, string> Users { get; init; }
    public required TimeSpan GracePeriod { get; init; }
    public required TimeSpan StartDelay { get; init; }
    public required TimeSpan HeartbeatInterval { get; init; }
    public required TimeSpan HeartbeatTimeout { get; init; }
    public required TimeSpan UserLatency { get; init; }
    public required bool StableNodeId { get; init; }
    public required bool NoSearch { get; init; }
    /// <summary><c>server.context-path</c> ("" or "/bitbucket"): /status, /rest and /scm are served under it.</summary>
    public string ContextPath { get; init; } = "";
    /// <summary><c>plugin.ssh.port</c>: the git-over-SSH port (an SSH-like exchange, see GitSshServer); 0 = none.</summary>
    public int SshPort { get; init; }
    /// <summary><c>bbsim.git.duration</c>: how long a clone streams (over SSH and under /scm).</summary>
    public TimeSpan GitDuration { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary><c>bbsim.ssl.certificate</c> / <c>bbsim.ssl.key</c> (PEM): HTTPS on server.port when both are set.</summary>
    public string? TlsCertificateFile { get; init; }
    public string? TlsKeyFile { get; init; }
    public string Scheme => TlsCertificateFile is null ? "http" : "https";

    public static NodeConfig Load(string home, string installDir, bool noSearch)
    {
        home = Path.GetFullPath(home);
        installDir = Path.GetFullPath(installDir);
        var propsFile = Path.Combine(home, "bitbucket.properties");
        var p = File.Exists(propsFile) ? Properties.Parse(File.ReadAllText(propsFile)) : new Dictionary<string, string>();
        string Get(string key, string fallback) => p.TryGetValue(key, out var v) && v.Length > 0 ? v : fallback;

        var port = int.Parse(Get("server.port", "7990"), CultureInfo.InvariantCulture);
        return new NodeConfig
        {
            Home = home,
            InstallDir = installDir,
            Version = ReadInstallVersion(installDir),
            Port = port,
            NodeName = Get("node.name", Environment.MachineName),
            SharedHome = Path.GetFullPath(Get("bitbucket.shared.home", Path.Combine(home, "shared")), home),
            IpAddress = Get("bbsim.ip.address", "127.0.0.1"),
            ClusterPort = int.Parse(Get("hazelcast.port", port.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture),
            AdminUser = Get("setup.sysadmin.username", "admin"),
            AdminPassword = Get("setup.sysadmin.password", "admin"),
            Users = ParseUsers(Get("bbsim.users", "")),
            GracePeriod = Duration(Get("graceful.shutdown.timeout", "30s")),
            StartDelay = Duration(Get("bbsim.start.delay", "2s")),
            HeartbeatInterval = Duration(Get("bbsim.heartbeat.interval", "1s")),
            HeartbeatTimeout = Duration(Get("bbsim.heartbeat.timeout", "5s")),
            UserLatency = Duration(Get("bbsim.user.latency", "0ms")),
            StableNodeId = bool.Parse(Get("bbsim.node.id.stable", "false")),
            NoSearch = noSearch,
            ContextPath = ContextPathOf(Get("server.context-path", "")),
            SshPort = int.Parse(Get("plugin.ssh.port", "0"), CultureInfo.InvariantCulture),
            GitDuration = Duration(Get("bbsim.git.duration", "2s")),
            TlsCertificateFile = p.TryGetValue("bbsim.ssl.certificate", out var cert) && cert.Length > 0 ? Path.GetFullPath(cert, home) : null,
            TlsKeyFile = p.TryGetValue("bbsim.ssl.key", out var key) && key.Length > 0 ? Path.GetFullPath(key, home) : null,
        };
    }

    /// <summary>"/bitbucket" for "bitbucket", "/bitbucket/" or "/bitbucket"; "" for "" or "/".</summary>
    public static string ContextPathOf(string text)
    {
        var t = text.Trim().Trim('/');
        return t.Length == 0 ? "" : "/" + t;
    }

    /// <summary>The version of an install directory, from its <c>bitbucket-api-X.Y.Z.jar</c>.</summary>
    public static SimVersion ReadInstallVersion(string installDir)
    {
        var lib = Path.Combine(installDir, "app", "WEB-INF", "lib");
        var jar = Directory.Exists(lib) ? Directory.GetFiles(lib, "bitbucket-api-*.jar").FirstOrDefault() : null;
        var text = jar is null ? null : Path.GetFileNameWithoutExtension(jar)["bitbucket-api-".Length..];
        return SimVersion.TryParse(text, out var v)
            ? v
            : throw new InvalidOperationException($"'{installDir}' is not a Bitbucket installation directory: no app/WEB-INF/lib/bitbucket-api-<version>.jar.");
    }

    /// <summary>"500ms", "2s", "1m" or a bare number of seconds ("30", "0.5").</summary>
    public static TimeSpan Duration(string text)
    {
        text = text.Trim();
        if (text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
            return TimeSpan.FromMilliseconds(double.Parse(text[..^2], CultureInfo.InvariantCulture));
        if (text.EndsWith('s') || text.EndsWith('S'))
            return TimeSpan.FromSeconds(double.Parse(text[..^1], CultureInfo.InvariantCulture));
        if (text.EndsWith('m') || text.EndsWith('M'))
            return TimeSpan.FromMinutes(double.Parse(text[..^1], CultureInfo.InvariantCulture));
        return TimeSpan.FromSeconds(double.Parse(text, CultureInfo.InvariantCulture));
    }

    private static Dictionary<string, string> ParseUsers(string text)
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = pair.IndexOf(':');
            if (colon > 0) users[pair[..colon]] = pair[(colon + 1)..];
        }
        return users;
    }
}

/// <summary>Java-style .properties (key=value or key: value, # and ! comments), enough for bitbucket.properties.</summary>
public static class Properties
{
    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#' || line[0] == '!') continue;
            var sep = line.IndexOfAny(new[] { '=', ':' });
            if (sep <= 0) continue;
            result[line[..sep].Trim()] = line[(sep + 1)..].Trim();
        }
        return result;
    }
}
