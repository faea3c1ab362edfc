using System.Collections.Concurrent;
using System.Diagnostics;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Tests.Nodes;

/// <summary>
/// While a node's process is waited for, the node is out of rotation: a check that backs off to a second notices the
/// exit up to a second late. The caller's cap (the upgrade passes its profile's MaxPollMilliseconds) bounds the gap
/// between two checks.
/// </summary>
public sealed class NodePollIntervalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-poll-").FullName;

    /// <summary>Records when each process check (kill -0) ran.</summary>
    private sealed class TimingShell : INodeShell
    {
        private readonly LocalShell _inner = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        public ConcurrentQueue<(TimeSpan Start, TimeSpan End)> Checks { get; } = new();
        public string HostName => _inner.HostName;
        public ShellPlatform Platform => _inner.Platform;

        public async Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
        {
            var start = _clock.Elapsed;
            var result = await _inner.RunAsync(command, timeout, cancellationToken, environment);
            if (command.Contains("kill -0", StringComparison.Ordinal)) Checks.Enqueue((start, _clock.Elapsed));
            return result;
        }

        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) => _inner.PathExistsAsync(path, cancellationToken);
        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) => _inner.ReadTextAsync(path, cancellationToken);
        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) => _inner.WriteTextAsync(path, content, cancellationToken);
        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) => _inner.CopyFileToAsync(localPath, remotePath, cancellationToken);
        public void Dispose() => _inner.Dispose();
    }

    [Fact]
    public async Task Stop_checks_the_process_at_least_as_often_as_the_callers_cap()
    {
        if (OperatingSystem.IsWindows()) return; // POSIX shell and kill -0; the Windows steps have their own tests
        var install = Path.Combine(_dir, "atlassian-bitbucket-8.19.3");
        var home = Path.Combine(_dir, "home");
        Directory.CreateDirectory(Path.Combine(install, "bin"));
        Directory.CreateDirectory(home);
        var stop = Path.Combine(install, "bin", "stop-bitbucket.sh");
        File.WriteAllText(stop, "#!/bin/sh\nexit 0\n"); // the "node" below exits on its own, 3 s after it started
        File.SetUnixFileMode(stop, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var node = Process.Start(new ProcessStartInfo("sleep", "3") { UseShellExecute = false })!;
        File.WriteAllText(Path.Combine(home, "bitbucket.pid"), node.Id.ToString());
        using var shell = new TimingShell();
        var installation = new NodeInstallation
        {
            HostName = shell.HostName, Platform = ShellPlatform.Posix, InstallDir = install, HomeDir = home, RunMode = NodeRunMode.BinScripts,
            Version = "8.19.3", ProcessId = node.Id, IsRunning = true,
        };

        // The pauses the step asks its poller for, not wall-clock gaps: those grow with the machine's load, the
        // requested pause is what the cap bounds.
        var pauses = new ConcurrentQueue<TimeSpan>();
        var poller = new Poller(TimeProvider.System, (d, ct) => { pauses.Enqueue(d); return Task.Delay(d, ct); });
        var result = await new NodeSteps(shell, poller: poller).StopAsync(installation,
            new NodeStopOptions { Timeout = TimeSpan.FromSeconds(30), MaxPollInterval = TimeSpan.FromMilliseconds(100) });

        Assert.True(node.HasExited);
        Assert.StartsWith("stopped pid", result.Summary);
        Assert.True(shell.Checks.Count >= 3, $"{shell.Checks.Count} process checks while the node ran for 3 s");
        // Uncapped, the steps' back-off asks for 100, 150, 225, 338 ms … up to 1 s: three pauses already tell them apart.
        var asked = pauses.ToArray();
        Assert.True(asked.Length >= 3, $"{asked.Length} pauses");
        Assert.True(asked.Max() <= TimeSpan.FromMilliseconds(100), "pauses: " + string.Join(", ", asked.Select(g => $"{g.TotalMilliseconds:0} ms")));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
