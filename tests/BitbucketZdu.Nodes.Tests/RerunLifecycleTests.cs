using BitbucketZdu.Core.Nodes;
using static BitbucketZdu.Nodes.Tests.RerunTests;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>Stop, start and roll back re-run at each point of the upgrade find their work done.</summary>
public sealed class RerunLifecycleTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public RerunLifecycleTests(SshServer ssh) => _ssh = ssh;

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task Stop_start_and_roll_back_re_runs_find_their_work_done(Transport transport)
    {
        await using var lab = NodeLab.Create(_ssh);
        var steps = lab.Steps(await lab.ShellAsync(transport));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        Assert.True((await steps.StartAsync(inst, Start)).Changed);
        var pid = lab.Pid()!.Value;
        Assert.False((await steps.StartAsync(inst, Start)).Changed);
        Assert.Equal(pid, lab.Pid());

        // Roll back "at the pre-stage step": nothing was changed, so nothing is stopped or restarted.
        var archive = await lab.ArchiveAsync();
        await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive });
        var rollBack = await steps.RollBackAsync(lab.OldDir, lab.NewDir, null, Start);
        Assert.False(rollBack.Changed);
        Assert.Equal(pid, lab.Pid());
        Assert.True(NodeLab.IsAlive(pid));

        // The cluster takes a moment to show the node OFFLINE: the stop waits for it.
        var polls = 0;
        var stopped = await steps.StopAsync(inst, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20), WaitUntilOffline = _ => Task.FromResult(++polls >= 3) });
        Assert.True(stopped.Changed);
        Assert.Contains("the cluster shows the node OFFLINE", stopped.Changes);
        Assert.True(polls >= 3);
        var again = await steps.StopAsync(inst, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.False(again.Changed);
        Assert.Equal("already stopped", again.Summary);

        // Roll back "after the stop step": the old version comes back.
        var back = await steps.RollBackAsync(lab.OldDir, lab.NewDir, null, Start);
        Assert.True(back.Changed);
        Assert.Equal("RUNNING", back.State);
        Assert.Equal(lab.OldDir, lab.StartedWith()["installDir"]);
    }

    [Fact]
    public async Task Stop_times_out_when_the_cluster_never_shows_the_node_offline()
    {
        await using var lab = NodeLab.Create(_ssh);
        var steps = lab.Steps(await lab.ShellAsync(Transport.PSSession));
        var inst = await steps.DiscoverAsync(lab.OldDir);
        var ex = await Assert.ThrowsAsync<BitbucketZdu.Core.BbException>(() =>
            steps.StopAsync(inst, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(1), WaitUntilOffline = _ => Task.FromResult(false) }));
        Assert.Equal("NodeStopTimeout", ex.ErrorId);
        Assert.Contains("OFFLINE", ex.Message);
    }
}
