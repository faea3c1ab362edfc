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
    public Task A_full_disk_is_refused_before_anything_is_written(Transport transport) =>
        // A 2 MB archive needs ~6 MB by the estimate; the disk has 4 MB.
        AssertDiskSpaceLowAsync(transport, paddingBytes: 2 * 1024 * 1024, tmpfsSize: "4m", estimate: true);

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public Task A_disk_that_fills_up_during_extraction_gives_NodeDiskSpaceLow(Transport transport) =>
        // Random bytes do not compress: the 3 MB archive fits on 5 MB, its extraction does not. The estimate is
        // turned off so the disk, not the estimate, has the last word.
        AssertDiskSpaceLowAsync(transport, paddingBytes: 3 * 1024 * 1024, tmpfsSize: "5m", estimate: false);

    /// <summary>
    /// Puts the node's install parent on a tiny tmpfs (the old install written again on it) and pre-stages a padded
    /// archive. Where mounting is not allowed (an unprivileged container) the reserve threshold refuses instead:
    /// same ErrorId, same untouched node.
    /// </summary>
    private async Task AssertDiskSpaceLowAsync(Transport transport, int paddingBytes, string tmpfsSize, bool estimate)
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync(paddingBytes: paddingBytes);
        var mounted = await TryMountTmpfsAsync(lab.Opt, tmpfsSize);
        try
        {
            if (mounted)
            {
                FixtureDist.WriteTree(lab.Opt, NodeLab.OldVersion);
                File.WriteAllText(Path.Combine(lab.OldDir, "bin/set-bitbucket-home.sh"), $"BITBUCKET_HOME={lab.Home}\n");
                if (!estimate) lab.Options.SpaceFactor = 0;
            }
            else
            {
                lab.Options.MinimumFreeBytes = long.MaxValue / 4;
            }
            var steps = lab.Steps(await lab.ShellAsync(transport));
            var inst = await steps.DiscoverAsync(lab.OldDir);
            var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
            Assert.Equal("NodeDiskSpaceLow", ex.ErrorId);
            Assert.Contains(lab.Opt, ex.Message);
            if (mounted) Assert.Contains(estimate ? "pre-staging needs" : "filled up while extracting", ex.Message);
        }
        finally
        {
            if (mounted) await ExternalProcess.RunAsync("umount", new[] { "-l", lab.Opt }, TimeSpan.FromSeconds(20));
        }
    }
}
