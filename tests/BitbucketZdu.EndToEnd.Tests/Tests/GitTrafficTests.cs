using System.Collections;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Git is Bitbucket's main traffic and the hard case for a drain: through HAProxy with an HTTP and an SSH (TCP) backend,
/// each node a member of both, users clone over HTTP and SSH while the cluster is upgraded.
/// </summary>
public sealed class GitTrafficTests
{
    private readonly ITestOutputHelper _output;

    public GitTrafficTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Upgrade_through_http_and_ssh_backends_fails_no_web_request_and_no_clone()
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Front = FrontKind.HAProxy });
        Assert.Equal(2, lab.Front.ProfileEntries().Length);

        var run = await lab.InvokeRollingUpgradeAsync(hook: (phase, node) => { if (phase == "NodeStarting" && node is not null) lab.Load.MarkDrain(node); });
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("rolling upgrade through HAProxy (HTTP + SSH backends) under web and git load", run);

        Assert.True(run.Succeeded, run.ErrorMessage);
        await lab.AssertClusterOnAsync("8.19.4");
        var load = lab.Load;
        Assert.True(load.Failed == 0, $"{load.Failed} web requests failed: {load.FailureSummary}");
        Assert.True(load.GitFailed(UserLoad.GitKind.Http) == 0 && load.GitFailed(UserLoad.GitKind.Ssh) == 0, "git operations failed: " + load.GitFailureSummary);
        Assert.True(load.GitTotal(UserLoad.GitKind.Http) > 5 && load.GitTotal(UserLoad.GitKind.Ssh) > 5, "too few clones ran through the upgrade: " + load.Figures);
        // A clone in flight on a node when that node was taken out of rotation finished (the drain waited for it).
        Assert.True(load.InFlightAtDrain > 0, "no clone was in flight when a node was drained: " + load.Figures);
        Assert.Equal(load.InFlightAtDrain, load.InFlightAtDrainCompleted);
        lab.Record("git over HTTP and SSH through HAProxy", "upgraded 3/3, STABLE", null, load.Figures);
    }
}
