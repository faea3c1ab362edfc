using System.Collections.Concurrent;
using System.Diagnostics;
using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Core.Tests.Nodes;

/// <summary>
/// Issue 15: over plain SSH each shell call is an ssh process (0.3–0.5 s multiplexed on a loaded machine), and while the
/// stop and the start run the node is out of rotation. A POSIX stop is one call: the pid file, the stop, and the wait
/// for the exit (every 50 ms, on the node) in one script; it used to be a pid read, a liveness check, the stop, and a
/// check per poll. A start is one call too: the pid check, the start and the home's state file (it was four).
/// </summary>
public sealed class NodeRoundTripTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-stop-").FullName;

    /// <summary>Counts the shell calls (round trips over a remote shell).</summary>
    private sealed class CountingShell : INodeShell
    {
        private readonly LocalShell _inner = new();
        public ConcurrentQueue<string> Calls { get; } = new();
        public string HostName => _inner.HostName;
        public ShellPlatform Platform => _inner.Platform;

        public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
        {
            Calls.Enqueue(command);
            return _inner.RunAsync(command, timeout, cancellationToken, environment);
        }

        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) { Calls.Enqueue("exists " + path); return _inner.PathExistsAsync(path, cancellationToken); }
        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) { Calls.Enqueue("read " + path); return _inner.ReadTextAsync(path, cancellationToken); }
        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) { Calls.Enqueue("write " + path); return _inner.WriteTextAsync(path, content, cancellationToken); }
        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) { Calls.Enqueue("copy " + remotePath); return _inner.CopyFileToAsync(localPath, remotePath, cancellationToken); }
        public void Dispose() => _inner.Dispose();
    }

    /// <summary>An install whose stop script runs <paramref name="stopScript"/>, and a "node" process: sleep <paramref name="runsFor"/>.</summary>
    private (NodeInstallation Installation, Process Node) Lab(string stopScript, string runsFor, string startScript = "exit 0")
    {
        var install = Path.Combine(_dir, "atlassian-bitbucket-8.19.3");
        var home = Path.Combine(_dir, "home");
        Directory.CreateDirectory(Path.Combine(install, "bin"));
        Directory.CreateDirectory(home);
        var stop = Path.Combine(install, "bin", "stop-bitbucket.sh");
        File.WriteAllText(stop, "#!/bin/sh\n" + stopScript + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(stop, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var start = Path.Combine(install, "bin", "start-bitbucket.sh");
        File.WriteAllText(start, "#!/bin/sh\n" + startScript + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(start, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var node = Process.Start(new ProcessStartInfo("sleep", runsFor) { UseShellExecute = false })!;
        File.WriteAllText(Path.Combine(home, "bitbucket.pid"), node.Id.ToString());
        var installation = new NodeInstallation
        {
            HostName = "localhost", Platform = ShellPlatform.Posix, InstallDir = install, HomeDir = home, RunMode = NodeRunMode.BinScripts,
            Version = "8.19.3", ProcessId = node.Id, IsRunning = true,
        };
        return (installation, node);
    }

    [Fact]
    public async Task Stop_and_the_wait_for_the_exit_are_one_shell_call()
    {
        if (OperatingSystem.IsWindows()) return; // POSIX shell; the Windows steps go step by step
        var (installation, node) = Lab("exit 0", "2");   // the "node" exits on its own, 2 s after it started
        using var _ = node;
        using var shell = new CountingShell();

        var result = await new NodeSteps(shell).StopAsync(installation, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(60) });

        Assert.True(node.HasExited, "the stop returned while the node still ran");
        Assert.Equal("stopped pid " + node.Id, result.Summary);
        Assert.Contains(result.Changes, c => c.StartsWith("ran ", StringComparison.Ordinal));
        // Before: a pid read, a liveness check, the stop and one check per poll, 10+ calls for these 2 s.
        Assert.True(shell.Calls.Count == 1, $"{shell.Calls.Count} shell calls: {string.Join(" | ", shell.Calls.Select(c => c.Split('\n')[0]))}");
    }

    [Fact]
    public async Task A_node_already_stopped_costs_one_call_and_changes_nothing()
    {
        if (OperatingSystem.IsWindows()) return;
        var (installation, node) = Lab("exit 0", "0");
        using var _ = node;
        await node.WaitForExitAsync();
        using var shell = new CountingShell();

        var result = await new NodeSteps(shell).StopAsync(installation, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(60) });

        Assert.Equal("already stopped", result.Summary);
        Assert.False(result.Changed);
        Assert.Single(shell.Calls);
    }

    [Fact]
    public async Task A_node_that_outlives_the_deadline_times_out_or_with_Force_is_killed()
    {
        if (OperatingSystem.IsWindows()) return;
        var (installation, node) = Lab("echo 'stop refused' >&2; exit 3", "120");   // ignores the stop
        using var _ = node;
        using var shell = new CountingShell();
        var steps = new NodeSteps(shell);

        var ex = await Assert.ThrowsAsync<BbException>(() => steps.StopAsync(installation, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(1) }));
        Assert.Equal("NodeStopTimeout", ex.ErrorId);
        Assert.False(node.HasExited);

        var killed = await steps.StopAsync(installation, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(1), Kill = true });
        Assert.True(node.HasExited, "-Force left the node running");
        Assert.Equal($"stopped pid {node.Id} (killed)", killed.Summary);
        Assert.DoesNotContain(killed.Changes, c => c.StartsWith("ran ", StringComparison.Ordinal));   // the stop script failed (exit 3)
    }

    [Fact]
    public async Task Start_the_pid_check_and_the_state_file_are_one_shell_call()
    {
        if (OperatingSystem.IsWindows()) return;
        // The "start" only records that it ran, with the home it was given; the node process has exited before.
        var (installation, node) = Lab("exit 0", "0", "echo started > \"$BITBUCKET_HOME/started-by-script\"");
        using var _ = node;
        await node.WaitForExitAsync();
        using var shell = new CountingShell();

        var result = await new NodeSteps(shell).StartAsync(installation, new NodeStartOptions { NoWait = true });

        Assert.Equal("started " + installation.InstallDir, result.Summary);
        Assert.True(File.Exists(Path.Combine(installation.HomeDir!, "started-by-script")), "the start script did not run (or without BITBUCKET_HOME)");
        var state = NodeMarker.Parse(File.ReadAllText(Path.Combine(installation.HomeDir!, NodeMarker.HomeStateName)));
        Assert.Equal(installation.InstallDir, state["installDir"]);
        Assert.Equal("8.19.3", state["version"]);
        // Before: a pid read, a liveness check, the start and the state file's write.
        Assert.True(shell.Calls.Count == 1, $"{shell.Calls.Count} shell calls: {string.Join(" | ", shell.Calls.Select(c => c.Split('\n')[0]))}");
    }

    [Fact]
    public async Task Start_refuses_a_node_running_from_another_install_and_reports_a_failed_start_script()
    {
        if (OperatingSystem.IsWindows()) return;
        var (installation, node) = Lab("exit 0", "120", "echo 'no java' >&2; exit 4");
        using var _ = node;
        try
        {
            File.WriteAllText(Path.Combine(installation.HomeDir!, NodeMarker.HomeStateName), "installDir=/opt/atlassian/bitbucket/8.19.2\n");
            using var shell = new CountingShell();
            var steps = new NodeSteps(shell);

            var other = await Assert.ThrowsAsync<BbException>(() => steps.StartAsync(installation, new NodeStartOptions { NoWait = true }));
            Assert.Equal("NodeRunningOtherInstall", other.ErrorId);
            Assert.Contains("/opt/atlassian/bitbucket/8.19.2", other.Message);
            Assert.Single(shell.Calls);

            node.Kill();
            await node.WaitForExitAsync();
            var failed = await Assert.ThrowsAsync<BbException>(() => steps.StartAsync(installation, new NodeStartOptions { NoWait = true }));
            Assert.Equal("NodeStartFailed", failed.ErrorId);
            Assert.Contains("exit code 4", failed.Message);
            Assert.Contains("no java", failed.Message);
        }
        finally
        {
            if (!node.HasExited) node.Kill();
        }
    }

    [Fact]
    public async Task Recording_the_install_dir_keeps_the_other_keys_and_reads_the_file_back_in_one_call()
    {
        if (OperatingSystem.IsWindows()) return;
        var path = Path.Combine(_dir, NodeMarker.HomeStateName);
        File.WriteAllText(path, "installDir=/opt/old dir\nstartedAt=2026-12-01T00:00:00Z\nversion=8.19.3\n");
        using var shell = new CountingShell();
        var ops = NodeOps.For(shell, new NodeStepOptions());

        var back = await ops.SetMarkerValueAsync(path, "installDir", "/opt/new 'dir'", CancellationToken.None);

        var marker = NodeMarker.Parse(back);
        Assert.Equal("/opt/new 'dir'", marker["installDir"]);
        Assert.Equal("8.19.3", marker["version"]);
        Assert.Equal("2026-12-01T00:00:00Z", marker["startedAt"]);
        Assert.Equal(back, File.ReadAllText(path));
        Assert.Single(File.ReadAllLines(path), l => l.StartsWith("installDir=", StringComparison.Ordinal));
        Assert.Single(shell.Calls);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
