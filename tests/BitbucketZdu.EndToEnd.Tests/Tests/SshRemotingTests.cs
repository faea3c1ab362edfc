using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>Node work over a real sshd: every node's Remoting is ssh://user@127.0.0.1:port (plain OpenSSH, POSIX sh).</summary>
public sealed class SshRemotingTests : IClassFixture<SshServer>
{
    private readonly ITestOutputHelper _output;
    private readonly SshServer _ssh;

    public SshRemotingTests(ITestOutputHelper output, SshServer ssh)
    {
        _output = output;
        _ssh = ssh;
    }

    [Fact]
    public async Task Full_upgrade_with_node_work_over_ssh()
    {
        // Two nodes: every step over ssh costs a round trip per command (~0.5 s multiplexed on a loaded 2-core machine), and
        // the third node would add a minute without covering anything new.
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Nodes = 2 });
        var profile = lab.Profile(_ => $"ssh://{_ssh.UserName}@{_ssh.HostName}:{_ssh.Port}");
        // As an admin writes it: the profile names the private key and the known_hosts file that pins the nodes' host
        // key (BatchMode, host keys verified), and Invoke-BbRollingUpgrade opens an SshShell per node from it.
        profile["Ssh"] = new System.Collections.Hashtable { ["KeyFilePath"] = _ssh.KeyFile, ["KnownHostsFile"] = _ssh.KnownHostsFile };
        var run = await lab.InvokeRollingUpgradeAsync(profile: profile);
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("rolling upgrade over ssh", run);

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.Equal(2, run.Report!.NodesUpgraded);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        lab.Record("happy path (node work over ssh://)", "upgraded 2/2, STABLE", null, $"2 nodes; {run.Report.Duration.TotalSeconds:0.0} s");
    }
}
