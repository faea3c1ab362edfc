using BitbucketZdu.Core;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>Each failure gives a clear error with a stable ErrorId and leaves the node as it was (old dir, parent dir, running process).</summary>
public sealed class FailureTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public FailureTests(SshServer ssh) => _ssh = ssh;

    internal static async Task<BbException> AssertLeavesNodeAsItWas(NodeLab lab, Func<Task> step)
    {
        var listing = lab.OptListing();
        var old = lab.Snapshot(lab.OldDir);
        var ex = await Assert.ThrowsAsync<BbException>(step);
        Assert.Equal(listing, lab.OptListing());
        Assert.Equal(old, lab.Snapshot(lab.OldDir));
        Assert.DoesNotContain(lab.OptListing(), e => e.StartsWith(".bbzdu", StringComparison.Ordinal));
        return ex;
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task A_wrong_checksum_is_refused_before_extracting(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync();
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive, Sha256 = new string('0', 64) }));
        Assert.Equal("NodeChecksumMismatch", ex.ErrorId);
        Assert.Contains(FixtureDist.Sha256(archive), ex.Message);
        Assert.Contains("expected " + new string('0', 64), ex.Message);
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task A_corrupted_archive_with_a_matching_checksum_is_refused(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync();
        // Damaged at the source: the published checksum matches the broken bytes, so only extraction can tell.
        var bytes = await File.ReadAllBytesAsync(archive);
        await File.WriteAllBytesAsync(archive, bytes.Take(bytes.Length / 2).ToArray());
        await File.WriteAllTextAsync(archive + ".sha256", FixtureDist.Sha256(archive));
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
        Assert.Equal("NodeArchiveCorrupt", ex.ErrorId);
        Assert.Contains("atlassian-bitbucket-8.19.2.tar.gz could not be extracted", ex.Message);
    }

    [Fact]
    public async Task An_archive_without_the_bitbucket_layout_is_refused()
    {
        await using var lab = NodeLab.Create(_ssh);
        var work = Path.Combine(lab.Root, "wrong");
        Directory.CreateDirectory(Path.Combine(work, "something-else"));
        File.WriteAllText(Path.Combine(work, "something-else", "README"), "not bitbucket");
        Directory.CreateDirectory(lab.DistDir);
        var archive = Path.Combine(lab.DistDir, "atlassian-bitbucket-8.19.2.tar.gz");
        var (code, output) = await ExternalProcess.RunAsync("tar", new[] { "-czf", archive, "-C", work, "something-else" }, TimeSpan.FromSeconds(20));
        Assert.True(code == 0, output);
        var steps = lab.Steps(await lab.ShellAsync(Transport.Ssh));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive, Sha256 = FixtureDist.Sha256(archive) }));
        Assert.Equal("NodeArchiveCorrupt", ex.ErrorId);
        Assert.Contains("bitbucket-api-8.19.2.jar", ex.Message);
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task A_missing_install_dir_is_named(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var missing = Path.Combine(lab.Opt, "atlassian-bitbucket-8.19.0");
        var ex = await AssertLeavesNodeAsItWas(lab, () => steps.DiscoverAsync(missing));
        Assert.Equal("NodeInstallDirMissing", ex.ErrorId);
        Assert.Contains(missing, ex.Message);
        var configure = await AssertLeavesNodeAsItWas(lab, async () => await steps.ConfigureAsync(await steps.DiscoverAsync(lab.OldDir), lab.NewDir));
        Assert.Equal("NodeInstallDirMissing", configure.ErrorId);
    }

    [Fact]
    public async Task An_existing_foreign_target_dir_is_never_overwritten()
    {
        await using var lab = NodeLab.Create(_ssh);
        var archive = await lab.ArchiveAsync();
        Directory.CreateDirectory(lab.NewDir);
        File.WriteAllText(Path.Combine(lab.NewDir, "admin-notes.txt"), "mine");
        var steps = lab.Steps(await lab.ShellAsync(Transport.Ssh));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        var ex = await AssertLeavesNodeAsItWas(lab, () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
        Assert.Equal("NodeTargetDirExists", ex.ErrorId);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(lab.NewDir, "admin-notes.txt")));
    }

    [Fact]
    public async Task A_wrong_key_gives_NodeConnectionFailed()
    {
        await using var lab = NodeLab.Create(_ssh);
        var otherKey = Path.Combine(lab.Root, "other_key");
        await ExternalProcess.RunAsync(RequiredTool.Find("ssh-keygen"), new[] { "-q", "-t", "ed25519", "-N", "", "-f", otherKey }, TimeSpan.FromSeconds(20));
        using var shell = new SshShell(new SshShellOptions(_ssh.HostName) { Port = _ssh.Port, UserName = _ssh.UserName, KeyFilePath = otherKey, KnownHostsFile = _ssh.KnownHostsFile });
        var ex = await Assert.ThrowsAsync<BbException>(() => new NodeSteps(shell).DiscoverAsync(lab.OldDir));
        Assert.Equal("NodeConnectionFailed", ex.ErrorId);
        Assert.Contains("Permission denied", ex.Message);
    }

    [Fact]
    public async Task An_unknown_host_key_is_refused()
    {
        await using var lab = NodeLab.Create(_ssh);
        var empty = Path.Combine(lab.Root, "empty_known_hosts");
        File.WriteAllText(empty, "");
        using var shell = new SshShell(new SshShellOptions(_ssh.HostName) { Port = _ssh.Port, UserName = _ssh.UserName, KeyFilePath = _ssh.KeyFile, KnownHostsFile = empty });
        var ex = await Assert.ThrowsAsync<BbException>(() => new NodeSteps(shell).DiscoverAsync(lab.OldDir));
        Assert.Equal("NodeConnectionFailed", ex.ErrorId);
        Assert.Contains("Host key verification failed", ex.Message);
    }

    internal static async Task<bool> TryMountTmpfsAsync(string dir, string size)
    {
        var (code, _) = await ExternalProcess.RunAsync("mount", new[] { "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir }, TimeSpan.FromSeconds(20));
        return code == 0;
    }
}
