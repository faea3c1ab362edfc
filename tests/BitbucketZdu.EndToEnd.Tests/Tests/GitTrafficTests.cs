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

    /// <summary>
    /// Why each node is a member of the SSH backend too: a profile that names only the HTTP backend leaves SSH clones
    /// landing on the node while it stops, and they fail. (This is the lab before the SSH backend was in the profile.)
    /// </summary>
    [Fact(Skip = "Not deterministic, so not a test: the SSH backend's health check (inter 200 fall 3) takes a stopping node out within "
        + "~0.6 s and the node's graceful stop lets clones in flight finish, so a clone fails only when it starts inside that window. "
        + "On a loaded machine 21 SSH clones went through one run with none failing (fresh-clone run, 2026-12-02). Kept as the record of why "
        + "each node is a member of the SSH backend too; KillCampaign and GitTrafficTests above prove that draining both backends loses nothing.")]
    public async Task Upgrade_that_drains_only_the_http_backend_breaks_ssh_clones()
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Front = FrontKind.HAProxy, HttpClones = 0, SshClones = 3 });
        var profile = lab.Profile();
        profile["LoadBalancers"] = new object[] { ((object[])profile["LoadBalancers"]!)[0] };
        foreach (Hashtable n in (object[])profile["Nodes"]!)
        {
            n["Member"] = ((Hashtable)n["Members"]!)["lb1"];
            n.Remove("Members");
        }

        var run = await lab.InvokeRollingUpgradeAsync(profile: profile);
        await lab.Load.StopAsync();
        lab.Print("rolling upgrade draining the HTTP backend only", run);

        Assert.True(lab.Load.GitFailed(UserLoad.GitKind.Ssh) > 0, "SSH clones did not fail although the SSH backend was never drained: " + lab.Load.Figures);
    }
}
