using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>Each step re-run after an interruption (a crash mid-step, or a step already done) finds its work and moves on.</summary>
public sealed class RerunTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public RerunTests(SshServer ssh) => _ssh = ssh;

    internal static readonly NodeStartOptions Start = new() { StartArguments = new[] { "--no-search" }, Timeout = TimeSpan.FromSeconds(20) };

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task Pre_stage_after_a_crash_mid_copy_and_mid_extract_completes_and_then_reports_done(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync();
        // What a crash leaves: half a copied archive, and a half-extracted tree under the temp name.
        Directory.CreateDirectory(Path.Combine(lab.Opt, ".bbzdu-staging"));
        File.WriteAllBytes(Path.Combine(lab.Opt, ".bbzdu-staging", Path.GetFileName(archive) + ".part"), File.ReadAllBytes(archive).Take(100).ToArray());
        Directory.CreateDirectory(Path.Combine(lab.Opt, ".bbzdu-extract-8.19.2", "atlassian-bitbucket-8.19.2", "bin"));
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        Assert.False(inst.IsStaged);

        var first = await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive });
        Assert.True(first.Changed);
        Assert.Equal(new[] { "atlassian-bitbucket-8.19.1", "atlassian-bitbucket-8.19.2" }, lab.OptListing());
        Assert.True(File.Exists(Path.Combine(lab.NewDir, "app/WEB-INF/lib/bitbucket-api-8.19.2.jar")));

        var again = await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive });
        Assert.False(again.Changed);
        Assert.Equal("already staged in " + lab.NewDir, again.Summary);
    }

    [Fact]
    public async Task Pre_stage_reuses_an_archive_copied_completely_before_a_crash()
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync(zip: true);
        Directory.CreateDirectory(Path.Combine(lab.Opt, ".bbzdu-staging"));
        File.Copy(archive, Path.Combine(lab.Opt, ".bbzdu-staging", Path.GetFileName(archive)));
        var steps = lab.Steps(await lab.ShellAsync(Transport.Ssh));
        var result = await steps.PreStageAsync(await steps.DiscoverAsync(lab.OldDir), new NodeDistribution { LocalPath = archive });
        Assert.Contains(result.Changes, c => c.StartsWith("reused", StringComparison.Ordinal));
        Assert.DoesNotContain(result.Changes, c => c.StartsWith("copied", StringComparison.Ordinal));
        Assert.True(new FileInfo(Path.Combine(lab.NewDir, "bin/start-bitbucket.sh")).UnixFileMode.HasFlag(UnixFileMode.UserExecute), "scripts from a .zip are executable");
        Assert.Equal(new[] { "atlassian-bitbucket-8.19.1", "atlassian-bitbucket-8.19.2" }, lab.OptListing());
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task Configure_after_a_crash_half_way_carries_the_rest_and_then_reports_done(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync();
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive });
        // The crash came after BITBUCKET_HOME was written.
        var homeScript = Path.Combine(lab.NewDir, "bin/set-bitbucket-home.sh");
        File.WriteAllText(homeScript, File.ReadAllText(homeScript).Replace("BITBUCKET_HOME=\n", $"BITBUCKET_HOME={lab.Home}\n"));

        var rest = await steps.ConfigureAsync(inst, lab.NewDir);
        Assert.True(rest.Changed);
        Assert.DoesNotContain(rest.Carried, c => c.Name == "BITBUCKET_HOME");
        Assert.Contains(rest.Carried, c => c.Name == "JVM_SUPPORT_RECOMMENDED_ARGS" && c.To == "-Dcom.example.flag=true -XX:+UseG1GC");

        var again = await steps.ConfigureAsync(inst, lab.NewDir);
        Assert.False(again.Changed);
        Assert.Empty(again.Carried);
        Assert.Equal("", again.Diff);
    }
}
