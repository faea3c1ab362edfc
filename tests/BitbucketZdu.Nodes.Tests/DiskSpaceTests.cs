using BitbucketZdu.Core;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.TestSupport;
using static BitbucketZdu.Nodes.Tests.FailureTests;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>A full disk is refused up front (estimate) or caught during extraction (a real tiny tmpfs), leaving the node as it was.</summary>
public sealed class DiskSpaceTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public DiskSpaceTests(SshServer ssh) => _ssh = ssh;

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task A_full_disk_is_refused_before_anything_is_written(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        // A 2 MB archive needs ~6 MB; the install dir sits on a 4 MB tmpfs (or, where mounting is not allowed, the
        // threshold says the same thing).
        var archive = await lab.ArchiveAsync(paddingBytes: 2 * 1024 * 1024);
        var mounted = await TryMountTmpfsAsync(lab.Opt, "4m");
        try
        {
            if (mounted) FixtureDist.WriteTree(lab.Opt, NodeLab.OldVersion); // the tmpfs hides the old dir: write it again on it
            else lab.Options.MinimumFreeBytes = long.MaxValue / 4;
            if (mounted) File.WriteAllText(Path.Combine(lab.OldDir, "bin/set-bitbucket-home.sh"), $"BITBUCKET_HOME={lab.Home}\n");
            var steps = lab.Steps(await lab.ShellAsync(transport));
            var inst = await steps.DiscoverAsync(lab.OldDir);
            var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
            Assert.Equal("NodeDiskSpaceLow", ex.ErrorId);
            Assert.Contains("free on the disk holding " + lab.Opt, ex.Message);
        }
        finally
        {
            if (mounted) await ExternalProcess.RunAsync("umount", new[] { "-l", lab.Opt }, TimeSpan.FromSeconds(20));
        }
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task A_disk_that_fills_up_during_extraction_gives_NodeDiskSpaceLow(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        // Random bytes do not compress: the archive fits, its extraction does not. The space factor is turned off so
        // the disk, not the estimate, has the last word.
        var archive = await lab.ArchiveAsync(paddingBytes: 3 * 1024 * 1024);
        // Where mounting is not allowed (an unprivileged container) the estimate refuses instead: same ErrorId.
        var mounted = await TryMountTmpfsAsync(lab.Opt, "5m");
        try
        {
            if (mounted)
            {
                FixtureDist.WriteTree(lab.Opt, NodeLab.OldVersion);
                File.WriteAllText(Path.Combine(lab.OldDir, "bin/set-bitbucket-home.sh"), $"BITBUCKET_HOME={lab.Home}\n");
                lab.Options.SpaceFactor = 0;
            }
            else
            {
                lab.Options.MinimumFreeBytes = long.MaxValue / 4;
            }
            var steps = lab.Steps(await lab.ShellAsync(transport));
            var inst = await steps.DiscoverAsync(lab.OldDir);
            var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
            Assert.Equal("NodeDiskSpaceLow", ex.ErrorId);
        }
        finally
        {
            if (mounted) await ExternalProcess.RunAsync("umount", new[] { "-l", lab.Opt }, TimeSpan.FromSeconds(20));
        }
    }

}
