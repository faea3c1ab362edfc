using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using Xunit.Abstractions;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>The node cmdlets' safety: -WhatIf, ErrorIds, caller-owned sessions.</summary>
public sealed class CmdletSafetyTests : NodeCmdletTestBase, IClassFixture<SshServer>
{
    public CmdletSafetyTests(SshServer ssh, ITestOutputHelper output) : base(ssh, output) { }

    [Fact]
    public async Task WhatIf_changes_nothing()
    {
        await using var lab = NodeLab.Create(Ssh);
        var archive = await lab.ArchiveAsync();
        var r = Ps.Run("""
            Get-BbNodeInstallation @p -InstallDir $old | Start-BbNode -StartArgument '--no-search' -TimeoutSec 20 | Out-Null
            Get-BbNodeInstallation @p -InstallDir $old | Copy-BbDistribution -Path $archive -MinimumFreeSpace 0 -WhatIf
            Get-BbNodeInstallation @p -InstallDir $old | Stop-BbNode -WhatIf
            Undo-BbNodeUpgrade @p -PreviousInstallDir $old -WhatIf
            """, Vars(lab, "Ssh", archive));
        Assert.True(r.FirstError is null, r.AllText);
        Assert.Empty(r.Output);
        Assert.Equal(new[] { "atlassian-bitbucket-8.19.1" }, lab.OptListing());
        Assert.True(NodeLab.IsAlive(lab.Pid()!.Value));
    }

    [Fact]
    public async Task Failures_are_error_records_with_stable_ids()
    {
        await using var lab = NodeLab.Create(Ssh);
        var archive = await lab.ArchiveAsync();
        var vars = Vars(lab, "Ssh", archive);
        vars["missing"] = Path.Combine(lab.Opt, "nope");

        var missing = Ps.Run("Get-BbNodeInstallation @p -InstallDir $missing", vars);
        Assert.Equal("NodeInstallDirMissing,BitbucketZdu.Cmdlets.GetBbNodeInstallationCommand", missing.FirstError?.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, missing.FirstError!.CategoryInfo.Category);

        var mismatch = Ps.Run($"Copy-BbDistribution @p -InstallDir $old -Path $archive -Sha256 {new string('a', 64)} -MinimumFreeSpace 0", vars);
        Assert.Equal("NodeChecksumMismatch,BitbucketZdu.Cmdlets.CopyBbDistributionCommand", mismatch.FirstError?.FullyQualifiedErrorId);

        var noFile = Ps.Run("Copy-BbDistribution @p -InstallDir $old -Path ./no-such-archive.tar.gz", vars);
        Assert.Equal("CopyBbDistributionArchiveNotFound,BitbucketZdu.Cmdlets.CopyBbDistributionCommand", noFile.FirstError?.FullyQualifiedErrorId);

        var lowDisk = Ps.Run("Copy-BbDistribution @p -InstallDir $old -Path $archive -MinimumFreeSpace 1PB", vars);
        Assert.Equal("NodeDiskSpaceLow,BitbucketZdu.Cmdlets.CopyBbDistributionCommand", lowDisk.FirstError?.FullyQualifiedErrorId);
        Assert.Equal(new[] { "atlassian-bitbucket-8.19.1" }, lab.OptListing());

        var notStaged = Ps.Run("Install-BbNodeVersion @p -InstallDir $old -NewInstallDir $old", vars);
        Assert.Equal("NodeNotStaged,BitbucketZdu.Cmdlets.InstallBbNodeVersionCommand", notStaged.FirstError?.FullyQualifiedErrorId);
    }

    [Fact]
    public async Task An_existing_session_is_used_and_left_open()
    {
        await using var lab = NodeLab.Create(Ssh);
        var vars = Vars(lab, "PowerShell");
        vars["s"] = lab.OpenPSSession();
        var r = Ps.Run("Get-BbNodeInstallation -Session $s -InstallDir $old; $s.State", vars);
        Assert.True(r.FirstError is null, r.AllText);
        Assert.Equal(NodeLab.OldVersion, Base<NodeInstallation>(r.Output[0]).Version);
        Assert.Equal("Opened", r.Output[1].ToString());
    }
}
