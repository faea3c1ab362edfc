using System.Management.Automation.Runspaces;
using BitbucketZdu.Nodes;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>A session whose shell cannot be created is not left open behind the caller's back (found by the soak's review).</summary>
public sealed class PSSessionShellTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public PSSessionShellTests(SshServer ssh) => _ssh = ssh;

    [Fact]
    public async Task A_session_the_module_opened_is_released_when_its_shell_cannot_be_created()
    {
        await using var lab = NodeLab.Create(_ssh);
        var session = lab.OpenPSSession();
        var released = 0;

        // The platform probe fails (here: cancelled); no shell exists that could ever be disposed.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            PSSessionShell.CreateAsync(session, s => { Assert.Same(session, s); released++; s.Runspace.Dispose(); }, new CancellationToken(true)));

        Assert.Equal(1, released);
        Assert.NotEqual(RunspaceState.Opened, session.Runspace.RunspaceStateInfo.State);
    }

    [Fact]
    public async Task A_callers_own_session_stays_open_when_the_shell_cannot_be_created()
    {
        await using var lab = NodeLab.Create(_ssh);
        var session = lab.OpenPSSession();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => PSSessionShell.CreateAsync(session, null, new CancellationToken(true)));

        Assert.Equal(RunspaceState.Opened, session.Runspace.RunspaceStateInfo.State);
        using var shell = await PSSessionShell.CreateAsync(session, null, CancellationToken.None); // still usable
        Assert.Equal(BitbucketZdu.Core.Nodes.ShellPlatform.Posix, shell.Platform);
    }
}
