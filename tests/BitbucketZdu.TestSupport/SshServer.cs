using System.Net.Sockets;
using BitbucketZdu.Simulator.Launcher;
using Xunit;

namespace BitbucketZdu.TestSupport;

/// <summary>
/// A real OpenSSH server on loopback per test class (classes run in parallel): its folder written by the simulator's
/// <see cref="LoopbackSshd"/> (the one sshd fixture, shared with the Pester suite): private config, its own host key
/// (pinned in a known_hosts file, so host keys are verified as in production), key-only login as the current user, and
/// a PowerShell subsystem running the repo's pinned pwsh.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SshServer : IAsyncLifetime
{
    private ExternalProcess? _sshd;
    private LoopbackSshd? _files;

    public string Dir { get; } = Directory.CreateTempSubdirectory("bbzdu-sshd-").FullName;
    public int Port { get; } = FreePort.Next();
    public string HostName => "127.0.0.1";
    public string UserName { get; } = Environment.UserName;
    public string KeyFile => Path.Combine(Dir, "client_key");
    public string KnownHostsFile => Path.Combine(Dir, "known_hosts");

    public Task InitializeAsync()
    {
        var sshd = RequiredTool.Find("sshd");
        var keygen = RequiredTool.Find("ssh-keygen");
        RequiredTool.Find("ssh");
        Directory.CreateDirectory("/run/sshd");
        _files = LoopbackSshd.Prepare(Dir, Port, keygen, $"{Pwsh.DotnetPath} {Pwsh.Home}/pwsh.dll -sshs -NoLogo -NoProfile");
        var config = _files.ConfigFile;
        _sshd = ExternalProcess.Start(sshd, new[] { "-D", "-e", "-f", config });
        return Eventually.UntilAsync(() =>
        {
            if (_sshd.HasExited) throw new InvalidOperationException("sshd exited: " + _sshd.Output);
            using var c = new TcpClient();
            try { c.Connect(HostName, Port); return true; } catch (SocketException) { return false; }
        }, TimeSpan.FromSeconds(10), $"sshd listening on {HostName}:{Port}");
    }

    /// <summary>
    /// Drops every live session (SIGKILL to each child of the listening sshd: one per connection), as a network path or
    /// an sshd restart does; the listener keeps accepting. Returns how many were dropped.
    /// </summary>
    public int DropSessions()
    {
        var listener = int.Parse(File.ReadAllText(_files!.PidFile).Trim());
        var count = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); } catch (IOException) { continue; }
            // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
            if (int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]) != listener) continue;
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill(entireProcessTree: true);
                count++;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
            }
        }
        return count;
    }

    public async Task DisposeAsync()
    {
        if (_sshd is not null) await _sshd.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>The pinned PowerShell (the 'dotnet pwsh' shim works only inside the repo, not in an sshd subsystem).</summary>
public static class Pwsh
{
    private static readonly Lazy<string> HomeDir = new(FindHome);

    public static string Home => HomeDir.Value;

    public static string DotnetPath =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : RequiredTool.Find("dotnet", "/usr/share/dotnet/dotnet");

    private static string FindHome()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } np ? np
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var home = Path.Combine(packages, "powershell", "7.6.9", "tools", "net10.0", "any", "unix");
        if (File.Exists(Path.Combine(home, "pwsh.dll"))) return home;
        var (code, output) = ExternalProcess.RunAsync("dotnet", new[] { "pwsh", "-NoProfile", "-c", "$PSHOME" }, TimeSpan.FromSeconds(60),
            workingDirectory: AppContext.BaseDirectory).GetAwaiter().GetResult();
        var found = output.Trim().Split('\n').LastOrDefault()?.Trim();
        if (code != 0 || found is null || !File.Exists(Path.Combine(found, "pwsh.dll")))
            throw new InvalidOperationException($"PowerShell 7.6.9 was not found in {home}. Run 'dotnet tool restore' in the repo first. ({output.Trim()})");
        return found;
    }
}
