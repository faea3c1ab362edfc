using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Node work over ssh:// (as in SshRemotingTests); while the first node is out of rotation the sshd side of every
/// connection is killed (the session processes), as when a network path or the node's sshd drops the session.
/// </summary>
public sealed class RemotingDroppedTests : IClassFixture<SshServer>
{
    private readonly ITestOutputHelper _output;
    private readonly SshServer _ssh;

    public RemotingDroppedTests(ITestOutputHelper output, SshServer ssh)
    {
        _output = output;
        _ssh = ssh;
    }

    [Fact]
    public async Task Ssh_session_dropped_while_a_node_is_out_of_rotation()
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Nodes = 2 });
        var profile = lab.Profile(_ => $"ssh://{_ssh.UserName}@{_ssh.HostName}:{_ssh.Port}");
        string? struck = null;
        var killed = 0;
        UpgradeHook hook = (e, _) =>
        {
            if (e.Phase == UpgradePhase.NodeOutOfRotation && struck is null)
            {
                struck = e.Node;
                killed = _ssh.DropSessions();
            }
            return Task.CompletedTask;
        };
        var run = await lab.RunEngineAsync(profile, (node, ct) =>
        {
            var target = RemotingTarget.Parse(node);
            return Task.FromResult<INodeShell>(new SshShell(new SshShellOptions(target.Host)
            {
                Port = target.Port ?? 22, UserName = target.UserName, KeyFilePath = _ssh.KeyFile, KnownHostsFile = _ssh.KnownHostsFile,
            }));
        }, hook: hook);
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print($"ssh sessions dropped while {struck} is out of rotation ({killed} sshd session processes killed)", run);

        Assert.True(killed > 0, "no ssh session was there to drop");
        // The shell's commands reconnect on their own (the multiplexed master is gone; each command falls back to a
        // connection of its own), so the upgrade completes.
        Assert.True(run.Succeeded, run.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("remoting session dropped (ssh://, sshd sessions killed while a node is out of rotation)",
            $"commands reconnected; upgraded 2/2, STABLE", null, $"{killed} sshd session processes killed");
    }
}
