using BitbucketZdu.Core.Nodes;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Core.Tests.Nodes;

/// <summary>The multiplexed ssh master is re-established after its connection drops, instead of every later command paying a handshake.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SshShellReconnectTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public SshShellReconnectTests(SshServer ssh) => _ssh = ssh;

    [Fact]
    public async Task After_the_session_drops_the_next_command_succeeds_and_rides_a_new_master()
    {
        using var shell = new SshShell(new SshShellOptions(_ssh.HostName)
        {
            Port = _ssh.Port, UserName = _ssh.UserName, KeyFilePath = _ssh.KeyFile, KnownHostsFile = _ssh.KnownHostsFile, ConnectTimeout = TimeSpan.FromSeconds(5),
        });
        Assert.Equal("1", (await shell.RunAsync("echo 1", TimeSpan.FromSeconds(20))).StandardOutput.Trim());
        var before = ControlSocket(shell);
        Assert.True(File.Exists(before), "the first command should have started a master");

        Assert.True(_ssh.DropSessions() > 0, "no session to drop");
        await Eventually.UntilAsync(() => !File.Exists(before) || !MasterAnswers(shell), TimeSpan.FromSeconds(10), "the master to notice its dropped connection");

        var r = await shell.RunAsync("echo 2", TimeSpan.FromSeconds(20));
        Assert.True(r.Succeeded, r.StandardError);
        Assert.Equal("2", r.StandardOutput.Trim());
        var r3 = await shell.RunAsync("echo 3", TimeSpan.FromSeconds(20));
        Assert.Equal("3", r3.StandardOutput.Trim());
        var after = ControlSocket(shell);
        Assert.True(File.Exists(after), "a new master should be up");
        Assert.True(MasterAnswers(shell), "the new master should answer ssh -O check");
    }

    private static string ControlSocket(SshShell shell) =>
        shell.BuildArguments(null).Single(a => a.StartsWith("ControlPath=", StringComparison.Ordinal))["ControlPath=".Length..];

    private static bool MasterAnswers(SshShell shell)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ssh") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in shell.BuildArguments(null, "-O", "check")) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.WaitForExit(10000);
        return p.ExitCode == 0;
    }
}
