using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Core.Tests.Nodes;

/// <summary>Issue 12 problem 8: Bitbucket Data Center keeps bitbucket.properties in $BITBUCKET_HOME/shared/.</summary>
public sealed class SharedPropertiesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-props-").FullName;

    [Fact]
    public async Task Discovery_reads_the_port_and_context_path_from_the_shared_home_first()
    {
        var install = Path.Combine(_dir, "atlassian-bitbucket-8.19.3");
        var home = Path.Combine(_dir, "home");
        Directory.CreateDirectory(Path.Combine(install, "bin"));
        Directory.CreateDirectory(Path.Combine(install, "app", "WEB-INF", "lib"));
        Directory.CreateDirectory(Path.Combine(home, "shared"));
        File.WriteAllText(Path.Combine(install, "bin", "start-bitbucket.sh"), "#!/bin/sh\n");
        File.WriteAllText(Path.Combine(install, "bin", "set-bitbucket-home.sh"), $"BITBUCKET_HOME={home}\n");
        File.WriteAllText(Path.Combine(home, "bitbucket.properties"), "server.port=7000\n");
        File.WriteAllText(Path.Combine(home, "shared", "bitbucket.properties"), "server.port=8443\nserver.context-path=/bitbucket\n");
        using var shell = new LocalShell();

        var inst = await new NodeSteps(shell).DiscoverAsync(install);

        Assert.Equal(home, inst.HomeDir);
        Assert.Equal(8443, inst.HttpPort);
        Assert.Equal("bitbucket", inst.ContextPath);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
