using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// The node host over a real (local) node layout: its waits run on the engine's clock (issue 16), and inside a node's
/// window a step that changes the node acts on the read taken just before instead of reading every install dir again
/// (issue 15: each full read is a dozen shell runs, over SSH seconds).
/// </summary>
public sealed class NodeStepsHostTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-host-").FullName;
    private readonly List<Process> _processes = new();
    private readonly WireMockServer _status = WireMockServer.Start();

    /// <summary>Counts the full reads of the node: each lists the install root once.</summary>
    private sealed class CountingShell : INodeShell
    {
        private readonly LocalShell _inner = new();
        private readonly string _root;
        public CountingShell(string root) => _root = root;
        public ConcurrentQueue<string> Commands { get; } = new();
        public int ProcessChecks => Commands.Count(c => c.Contains("kill -0", StringComparison.Ordinal));
        public int FullReads => Commands.Count(c => c.StartsWith("ls -1A -- ", StringComparison.Ordinal) && c.Contains(_root, StringComparison.Ordinal) && !c.Contains("lib", StringComparison.Ordinal));
        public string HostName => _inner.HostName;
        public ShellPlatform Platform => _inner.Platform;

        public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
        {
            Commands.Enqueue(command);
            return _inner.RunAsync(command, timeout, cancellationToken, environment);
        }

        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) => _inner.PathExistsAsync(path, cancellationToken);
        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) => _inner.ReadTextAsync(path, cancellationToken);
        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) => _inner.WriteTextAsync(path, content, cancellationToken);
        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) => _inner.CopyFileToAsync(localPath, remotePath, cancellationToken);
        public void Dispose() => _inner.Dispose();
    }

    private string Root => Path.Combine(_dir, "install");
    private string Home => Path.Combine(_dir, "home");
    private string OldDir => Path.Combine(Root, "atlassian-bitbucket-8.19.3");
    private string NewDir => Path.Combine(Root, "atlassian-bitbucket-8.19.4");

    /// <summary>8.19.3 running (a sleep standing in for the JVM), 8.19.4 pre-staged beside it: configured, or (a pre-stage killed before it carried the configuration) not.</summary>
    private void Layout(bool configured = true)
    {
        Directory.CreateDirectory(Home);
        foreach (var dir in new[] { OldDir, NewDir })
        {
            Directory.CreateDirectory(Path.Combine(dir, "bin"));
            Script(dir, "set-bitbucket-home", dir == OldDir || configured ? $"BITBUCKET_HOME={Home}\n" : "BITBUCKET_HOME=\n");
            Script(dir, "stop-bitbucket", $"kill $(cat {Home}/bitbucket.pid)\n");
            Script(dir, "start-bitbucket", $"sleep 120 >/dev/null 2>&1 &\necho $! > {Home}/bitbucket.pid\n");
        }
        File.WriteAllText(Path.Combine(NewDir, NodeMarker.InstallMarkerName), $"version=8.19.4\nconfigured={(configured ? "true" : "false")}\nprevious=" + OldDir + "\n");
        var node = Process.Start(new ProcessStartInfo("sleep", "120") { UseShellExecute = false })!;
        _processes.Add(node);
        File.WriteAllText(Path.Combine(Home, "bitbucket.pid"), node.Id.ToString());
    }

    private static void Script(string dir, string name, string body)
    {
        var path = Path.Combine(dir, "bin", name + ".sh");
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private ClusterProfile Profile(int firstPollMs = 50)
    {
        var archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.tar.gz");
        File.WriteAllText(archive, "x");
        return ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = PreflightCheck.Sha256Of(archive) },
            ["LoadBalancers"] = new object[] { new Hashtable { ["Name"] = "lb", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9999" } } },
            ["Nodes"] = new object[]
            {
                new Hashtable { ["Name"] = "node-1", ["Url"] = _status.Url + "/bitbucket", ["Remoting"] = "local", ["InstallRoot"] = Root, ["Service"] = "Script", ["Member"] = "bitbucket/node-1" },
                new Hashtable { ["Name"] = "node-2", ["Url"] = "http://127.0.0.1:1/", ["Remoting"] = "local", ["InstallRoot"] = Path.Combine(_dir, "other"), ["Service"] = "Script", ["Member"] = "bitbucket/node-2" },
            },
            ["Timeouts"] = new Hashtable { ["FirstPollMilliseconds"] = firstPollMs, ["MaxPollMilliseconds"] = Math.Max(firstPollMs, 200), ["StopSeconds"] = 30, ["StartSeconds"] = 60 },
        }, null);
    }

    [Fact]
    public async Task The_wait_for_the_process_to_go_runs_on_the_engines_clock()
    {
        if (OperatingSystem.IsWindows()) return; // POSIX layout and kill -0
        Layout();
        var profile = Profile(firstPollMs: 2000);
        var time = new VirtualClock();
        using var shell = new CountingShell(Root);
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(shell), clock: time.ToUpgradeClock());
        var real = Stopwatch.StartNew();

        // The process never goes: the 20 s pass on the virtual clock, not in real time.
        var ex = await Assert.ThrowsAsync<BbException>(() => host.WaitProcessGoneAsync(profile.Nodes[0], TimeSpan.FromSeconds(20), CancellationToken.None));

        Assert.Equal("NodeStopTimeout", ex.ErrorId);
        Assert.InRange(time.Now.TotalSeconds, 20, 20.01);
        Assert.True(real.Elapsed < TimeSpan.FromSeconds(15), $"took {real.Elapsed} of real time");
        // One read of the node, then the process alone every first poll interval (2 s here), without back-off: 11
        // checks in 20 s.
        Assert.Equal(1, shell.FullReads);
        Assert.Equal(11 + 2, shell.ProcessChecks); // + the read's own, one per install dir
    }

    [Fact]
    public async Task The_wait_for_status_RUNNING_runs_on_the_engines_clock()
    {
        _status.Answer("GET", "/bitbucket/status", Reply("""{"state":"STARTING"}""", 503));
        var profile = Profile();
        var time = new VirtualClock();
        using var host = new NodeStepsHost(profile, (_, _) => throw new InvalidOperationException("no shell needed"), clock: time.ToUpgradeClock());
        var real = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<BbException>(() => host.WaitStatusRunningAsync(profile.Nodes[0], TimeSpan.FromSeconds(20), CancellationToken.None));

        Assert.Equal("NodeStartTimeout", ex.ErrorId);
        Assert.InRange(time.Now.TotalSeconds, 20, 20.01);
        Assert.True(real.Elapsed < TimeSpan.FromSeconds(15), $"took {real.Elapsed} of real time");
    }

    [Fact]
    public async Task Stop_install_and_start_act_on_the_read_taken_just_before_and_still_switch_the_node()
    {
        if (OperatingSystem.IsWindows()) return;
        Layout();
        _status.Answer("GET", "/bitbucket/status", Reply("""{"state":"RUNNING"}""", 200));
        var profile = Profile();
        var node = profile.Nodes[0];
        using var shell = new CountingShell(Root);
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(shell));
        var ct = CancellationToken.None;

        // The engine's order: where it stands, stop, process gone, install, read-back, start.
        Assert.True((await host.GetStateAsync(node, ct)).ProcessRunning);
        var commandsBefore = shell.Commands.Count;
        await host.StopAsync(node, ct);
        await host.WaitProcessGoneAsync(node, TimeSpan.FromSeconds(30), ct);
        Assert.Equal(1, shell.FullReads); // the stop and the wait for its process acted on the first read
        // One round trip for both (issue 15): the stop waits for the exit on the node, and the wait trusts what it saw.
        Assert.Equal(1, shell.Commands.Count - commandsBefore);
        var readsBefore = shell.FullReads;
        await host.InstallAsync(node, "8.19.4", ct);
        Assert.Equal(readsBefore, shell.FullReads); // acted on the wait's read
        var installed = await host.GetStateAsync(node, ct);
        Assert.Equal("8.19.4", installed.InstalledVersion);
        Assert.False(installed.ProcessRunning);
        // The engine's read-back after the install is the state file the install read back from the node in the same
        // round trip, not a read of every install dir again (issue 15).
        Assert.Equal(readsBefore, shell.FullReads);
        readsBefore = shell.FullReads;
        await host.StartAsync(node, ct);
        Assert.Equal(readsBefore, shell.FullReads); // acted on the read-back

        var after = await host.GetStateAsync(node, ct);
        Assert.True(after.ProcessRunning);
        Assert.Equal("8.19.4", after.InstalledVersion);
        Assert.Equal(NewDir, NodeMarker.Parse(File.ReadAllText(Path.Combine(Home, NodeMarker.HomeStateName)))["installDir"]);
        // The first and last GetState read the node; stop, wait, install, the read-back and start each acted on the read before.
        Assert.Equal(2, shell.FullReads);
        _processes.Add(Process.GetProcessById(after.ProcessId!.Value));
    }

    [Fact]
    public async Task An_install_that_carries_the_configuration_itself_does_not_hand_on_the_stale_view()
    {
        // CI's kill campaign: a pre-stage killed before it carried the configuration leaves the new dir without a home;
        // the install carries it then, and the start must see the dir as it is now, not as the read before the carry.
        if (OperatingSystem.IsWindows()) return;
        Layout(configured: false);
        _status.Answer("GET", "/bitbucket/status", Reply("""{"state":"RUNNING"}""", 200));
        var profile = Profile();
        var node = profile.Nodes[0];
        using var shell = new CountingShell(Root);
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(shell));
        var ct = CancellationToken.None;

        Assert.True((await host.GetStateAsync(node, ct)).ProcessRunning);
        await host.StopAsync(node, ct);
        await host.WaitProcessGoneAsync(node, TimeSpan.FromSeconds(30), ct);
        await host.InstallAsync(node, "8.19.4", ct);
        Assert.Equal("8.19.4", (await host.GetStateAsync(node, ct)).InstalledVersion);
        await host.StartAsync(node, ct);

        var after = await host.GetStateAsync(node, ct);
        _processes.Add(Process.GetProcessById(after.ProcessId!.Value));
        Assert.True(after.ProcessRunning);
        Assert.Contains(Home, File.ReadAllText(Path.Combine(NewDir, "bin", "set-bitbucket-home.sh")));
    }

    [Fact]
    public async Task A_read_older_than_the_reuse_window_or_followed_by_a_change_is_not_acted_on()
    {
        if (OperatingSystem.IsWindows()) return;
        Layout();
        var profile = Profile();
        var node = profile.Nodes[0];
        var time = new VirtualClock();
        using var shell = new CountingShell(Root);
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(shell), clock: time.ToUpgradeClock());
        var ct = CancellationToken.None;

        await host.GetStateAsync(node, ct);
        time.Advance(NodeStepsHost.ReuseReadFor + TimeSpan.FromMilliseconds(1));
        await host.StopAsync(node, ct);
        Assert.Equal(2, shell.FullReads); // too old: read again

        await host.WaitProcessGoneAsync(node, TimeSpan.FromSeconds(30), ct);
        var reads = shell.FullReads;
        await host.InstallAsync(node, "8.19.4", ct);
        Assert.Equal(reads, shell.FullReads);
        // The install changed the node: the start reads it again and runs the new dir.
        _status.Answer("GET", "/bitbucket/status", Reply("""{"state":"RUNNING"}""", 200));
        await host.StartAsync(node, ct);
        Assert.Equal(reads + 1, shell.FullReads);
        var after = await host.GetStateAsync(node, ct);
        _processes.Add(Process.GetProcessById(after.ProcessId!.Value));
        Assert.Equal("8.19.4", after.InstalledVersion);
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
            p.Dispose();
        }
        _status.Stop();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
