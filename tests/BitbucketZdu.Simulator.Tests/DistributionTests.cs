using System.IO.Compression;
using System.Text.Json;
using BitbucketZdu.Simulator.Launcher;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>"bbsim dist": Bitbucket-like archives, and the bin scripts an admin uses.</summary>
public sealed class DistributionTests
{
    [Fact]
    public async Task Dist_writes_tar_gz_and_zip_with_checksums_and_the_real_layout()
    {
        await using var c = SimCluster.Create();
        var output = Path.Combine(c.Root, "out");
        var (code, text) = await SimCluster.BbsimAsync("dist", "--version", "8.19.5", "--output", output);
        Assert.True(code == 0, text);
        foreach (var name in new[] { "atlassian-bitbucket-8.19.5.tar.gz", "atlassian-bitbucket-8.19.5.zip" })
        {
            var (sumCode, sumText) = await ExternalProcess.RunAsync("sha256sum", new[] { "-c", name + ".sha256" }, TimeSpan.FromSeconds(10), workingDirectory: output);
            Assert.True(sumCode == 0, sumText);
            Assert.Contains(name + ": OK", sumText);
            Assert.True(new FileInfo(Path.Combine(output, name)).Length < 64 * 1024, "archives stay small");
        }

        var (tarCode, listing) = await ExternalProcess.RunAsync("tar", new[] { "-tvzf", Path.Combine(output, "atlassian-bitbucket-8.19.5.tar.gz") }, TimeSpan.FromSeconds(10));
        Assert.True(tarCode == 0, listing);
        foreach (var script in new[] { "start-bitbucket.sh", "stop-bitbucket.sh", "set-bitbucket-home.sh", "set-bitbucket-user.sh", "set-jre-home.sh", "_start-webapp.sh" })
            Assert.Matches(@"-rwxr-xr-x .* atlassian-bitbucket-8\.19\.5/bin/" + System.Text.RegularExpressions.Regex.Escape(script), listing);
        foreach (var bat in new[] { "start-bitbucket.bat", "stop-bitbucket.bat", "set-bitbucket-home.bat", "set-bitbucket-user.bat", "set-jre-home.bat", "_start-webapp.bat" })
            Assert.Contains("atlassian-bitbucket-8.19.5/bin/" + bat, listing);
        Assert.Contains("atlassian-bitbucket-8.19.5/app/WEB-INF/lib/bitbucket-api-8.19.5.jar", listing);

        // The zip extracts the same tree with the same Unix modes.
        var unzipped = Path.Combine(c.Root, "unzipped");
        ZipFile.ExtractToDirectory(Path.Combine(output, "atlassian-bitbucket-8.19.5.zip"), unzipped);
        var bin = Path.Combine(unzipped, "atlassian-bitbucket-8.19.5", "bin");
        Assert.True(OperatingSystem.IsWindows() || File.GetUnixFileMode(Path.Combine(bin, "start-bitbucket.sh")).HasFlag(UnixFileMode.UserExecute));
        var lines = File.ReadAllLines(Path.Combine(bin, "set-bitbucket-home.sh"));
        Assert.Contains("BITBUCKET_HOME=", lines);
        Assert.Contains("BITBUCKET_USER=", File.ReadAllLines(Path.Combine(bin, "set-bitbucket-user.sh")));
        Assert.Contains("JRE_HOME=", File.ReadAllLines(Path.Combine(bin, "set-jre-home.sh")));
        var webapp = File.ReadAllLines(Path.Combine(bin, "_start-webapp.sh"));
        Assert.Contains(webapp, l => l.StartsWith("JVM_MINIMUM_MEMORY=", StringComparison.Ordinal));
        Assert.Contains(webapp, l => l.StartsWith("JVM_MAXIMUM_MEMORY=", StringComparison.Ordinal));
        Assert.Contains(webapp, l => l.StartsWith("JVM_SUPPORT_RECOMMENDED_ARGS=", StringComparison.Ordinal));
        Assert.Contains("set BITBUCKET_HOME=", File.ReadAllText(Path.Combine(bin, "set-bitbucket-home.bat")));
    }

    [Fact]
    public async Task Start_refuses_without_a_home_and_the_environment_wins_over_the_file()
    {
        await using var c = SimCluster.Create();
        var node = c.AddNode();
        var archive = await c.DistAsync("8.19.3");
        var install = ClusterLauncher.Install(archive, node.InstallRoot);   // set-bitbucket-home.sh left empty, as shipped
        var start = Path.Combine(install, "bin", "start-bitbucket.sh");

        var (code, output) = await SimCluster.RunAsync(start, "--no-search");
        Assert.Equal(1, code);
        Assert.Contains("BITBUCKET_HOME is not set", output);

        (code, output) = await SimCluster.RunAsync(start, "--no-search", new Dictionary<string, string> { ["BITBUCKET_HOME"] = Path.Combine(c.Root, "missing") });
        Assert.Equal(1, code);
        Assert.Contains("does not exist", output);

        // BITBUCKET_HOME in the environment wins over set-bitbucket-home.sh.
        ClusterLauncher.SetBitbucketHome(install, Path.Combine(c.Root, "not-this-one"));
        Assert.Contains($"\nBITBUCKET_HOME={Path.Combine(c.Root, "not-this-one")}\n", File.ReadAllText(Path.Combine(install, "bin", "set-bitbucket-home.sh")));

        // An admin customisation in _start-webapp.sh reaches the node.
        var webapp = Path.Combine(install, "bin", "_start-webapp.sh");
        File.WriteAllText(webapp, File.ReadAllText(webapp).Replace("JVM_MAXIMUM_MEMORY=1g", "JVM_MAXIMUM_MEMORY=3g", StringComparison.Ordinal));
        (code, output) = await SimCluster.RunAsync(start, "--no-search", new Dictionary<string, string> { ["BITBUCKET_HOME"] = node.Home });
        Assert.True(code == 0, output);
        node.InstallDir = install;
        await c.WaitForAsync(x => x.Nodes.Count == 1 && x.State == Core.Api.ClusterState.STABLE && x.Nodes[0].State == Core.Api.NodeState.ACTIVE, "the node ACTIVE");
        using var http = SimCluster.Http(admin: false);
        using var info = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Url, "bbsim/node")));
        Assert.Equal("3g", info.RootElement.GetProperty("jvm").GetProperty("maximumMemory").GetString());
        Assert.Equal(install, info.RootElement.GetProperty("installDir").GetString());
        Assert.True(info.RootElement.GetProperty("noSearch").GetBoolean());

        // A second start with the same home is refused while the node runs.
        (code, output) = await SimCluster.RunAsync(start, "--no-search", new Dictionary<string, string> { ["BITBUCKET_HOME"] = node.Home });
        Assert.Equal(1, code);
        Assert.Contains("already running", output);
    }

    [Fact]
    public async Task A_node_runs_as_an_init_d_service()
    {
        await using var c = SimCluster.Create();
        var node = c.AddNode();
        node.InstallDir = await c.InstallAsync(node, "8.19.3");
        var serviceDir = Path.Combine(c.Root, "init.d");
        var (code, output) = await SimCluster.BbsimAsync("service", "--install", node.InstallDir, "--home", node.Home, "--output", serviceDir);
        Assert.True(code == 0, output);
        var script = Path.Combine(serviceDir, "atlbitbucket");
        Assert.Contains("--no-search", File.ReadAllText(script));

        Assert.Equal(3, (await SimCluster.RunAsync(script, "status")).ExitCode);
        (code, output) = await SimCluster.RunAsync(script, "start");
        Assert.True(code == 0, output);
        await c.WaitForAsync(x => x.Nodes.Count == 1 && x.Nodes[0].State == Core.Api.NodeState.ACTIVE, "the service's node ACTIVE");
        (code, output) = await SimCluster.RunAsync(script, "status");
        Assert.True(code == 0, output);
        Assert.Contains("is running", output);
        (code, output) = await SimCluster.RunAsync(script, "stop");
        Assert.True(code == 0, output);
        Assert.Equal(3, (await SimCluster.RunAsync(script, "status")).ExitCode);
    }
}
