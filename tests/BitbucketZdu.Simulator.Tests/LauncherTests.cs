using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Simulator.Launcher;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>"bbsim cluster" / "bbsim stop": one command for a whole cluster on loopback.</summary>
public sealed class LauncherTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "bbsim-launch-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task One_command_starts_3_nodes_STABLE_within_15_s_and_Ctrl_C_stops_them()
    {
        var ports = new[] { FreePort.Next(), FreePort.Next(), FreePort.Next() };
        var sw = Stopwatch.StartNew();
        await using var launcher = ExternalProcess.Start("dotnet", new[]
        {
            SimCluster.BbsimDll, "cluster", "--nodes", "3", "--version", "8.19.3", "--root", _root,
            "--ports", string.Join(',', ports), "--grace", "2s",
        });
        await Eventually.UntilAsync(() => launcher.Output.Contains("Press Ctrl+C", StringComparison.Ordinal) || launcher.HasExited,
            TimeSpan.FromSeconds(60), "the launcher to report the cluster");
        var elapsed = sw.Elapsed;
        var output = launcher.Output;
        Assert.False(launcher.HasExited, output);
        var reported = double.Parse(Regex.Match(output, @"STABLE in ([0-9.]+) s").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        log.WriteLine($"3-node cluster STABLE: {reported:0.0} s reported by the launcher, {elapsed.TotalSeconds:0.0} s including the launcher's own start (default 2 s node start delay).");
        Assert.True(elapsed < TimeSpan.FromSeconds(15), $"STABLE after {elapsed.TotalSeconds:0.0} s");

        // It printed how to connect; the printed password works with the module's client.
        var password = Regex.Match(output, @"password: (\S+)").Groups[1].Value;
        Assert.Contains($"http://127.0.0.1:{ports[0]}", output);
        using (var client = new ZduClient(new ZduClientOptions(new Uri($"http://127.0.0.1:{ports[2]}"), ZduCredential.Basic("admin", Canary.Secure(password)))))
        {
            var cluster = await client.GetClusterAsync();
            Assert.Equal(ClusterState.STABLE, cluster.State);
            Assert.Equal(3, cluster.Nodes.Count(n => n.State == NodeState.ACTIVE));
        }
        var pids = Enumerable.Range(1, 3).Select(i => ProcessControl.ReadPid(Path.Combine(_root, $"node-{i}", "home"))!.Value).ToList();
        Assert.All(pids, p => Assert.True(ProcessControl.IsBbsimNode(p)));

        launcher.Signal("INT");
        Assert.True(await launcher.WaitForExitAsync(TimeSpan.FromSeconds(30)), launcher.Output);
        Assert.All(pids, p => Assert.False(ProcessControl.IsAlive(p), $"node pid {p} still running"));
        Assert.Contains("stopped (pid", launcher.Output);
    }

    [Fact]
    public async Task Stop_command_stops_a_detached_cluster()
    {
        var ports = new[] { FreePort.Next(), FreePort.Next() };
        var (code, output) = await SimCluster.BbsimAsync("cluster", "--nodes", "2", "--root", _root, "--ports", string.Join(',', ports),
            "--start-delay", "100ms", "--password", Canary.Password, "--detach");
        Assert.True(code == 0, output);
        var manifest = JsonSerializer.Deserialize<ClusterManifest>(File.ReadAllText(ClusterManifest.PathIn(_root)), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        Assert.Equal(2, manifest.Nodes.Count);
        Assert.Equal(ports, manifest.Nodes.Select(n => n.Port));
        var pids = manifest.Nodes.Select(n => ProcessControl.ReadPid(n.Home)!.Value).ToList();

        // A second launch on the same root is refused while the first runs.
        var again = await SimCluster.BbsimAsync("cluster", "--nodes", "2", "--root", _root, "--ports", string.Join(',', ports), "--detach");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already running", again.Output);

        (code, output) = await SimCluster.BbsimAsync("stop", "--root", _root);
        Assert.True(code == 0, output);
        Assert.All(pids, p => Assert.False(ProcessControl.IsAlive(p)));
    }

    [Fact]
    public async Task A_node_that_exits_while_starting_fails_the_start_at_once_with_its_last_log_lines()
    {
        // A node that cannot serve (here: a certificate with another certificate's key) exits; the launcher must say so
        // at once, naming the node and showing its log, not wait out --timeout for an ACTIVE that cannot come.
        var certs = Directory.CreateDirectory(Path.Combine(_root + "-certs", "a")).FullName;
        var other = Directory.CreateDirectory(Path.Combine(_root + "-certs", "b")).FullName;
        try
        {
            var (caA, a) = BitbucketZdu.Simulator.Tls.SimCertificates.WriteSet(certs, "bbsim test CA a");
            var (caB, b) = BitbucketZdu.Simulator.Tls.SimCertificates.WriteSet(other, "bbsim test CA b");
            caA.Dispose();
            caB.Dispose();
            var sw = Stopwatch.StartNew();
            var (code, output) = await SimCluster.BbsimAsync("cluster", "--nodes", "2", "--root", _root,
                "--ports", string.Join(',', FreePort.Next(), FreePort.Next()), "--start-delay", "100ms", "--password", Canary.Password,
                "--tls-cert", a.CertificateFile, "--tls-key", b.KeyFile, "--timeout", "120s", "--detach");
            log.WriteLine($"failed start reported after {sw.Elapsed.TotalSeconds:0.0} s:\n{output.Replace(Canary.Password, "***")}");
            Assert.Equal(1, code);
            Assert.Matches(@"node-\d \(pid \d+\) exited while the cluster was starting", output);
            Assert.Contains("last lines of", output);
            Assert.Contains("the key does not match the certificate", output);   // the node's own reason, from its log
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"the failure took {sw.Elapsed.TotalSeconds:0} s (--timeout 120s)");
        }
        finally
        {
            Directory.Delete(_root + "-certs", recursive: true);
        }
    }

    [Fact]
    public async Task Unknown_options_are_refused_with_usage()
    {
        var (code, output) = await SimCluster.BbsimAsync("cluster", "--nodse", "3", "--root", _root);
        Assert.Equal(2, code);
        Assert.Contains("Unknown option(s): --nodse", output);
        Assert.False(Directory.Exists(_root));
    }

    public void Dispose()
    {
        // Whatever a failed test left running under the root.
        if (Directory.Exists(_root))
        {
            ClusterLauncher.StopAsync(_root, TextWriter.Null, stopLauncher: false).GetAwaiter().GetResult();
            Directory.Delete(_root, recursive: true);
        }
    }
}
