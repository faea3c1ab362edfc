using System.Collections;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Every load-balancer kind is usable from a cluster profile: Invoke-BbRollingUpgrade -ProfilePath upgrades the
/// simulated cluster through it, the kinds that need a credential getting it by load-balancer name
/// (-LoadBalancerCredential), never from the profile, and never showing it. Where users go through the kind (HAProxy,
/// NGINX, Apache; the F5 and ELB stubs' data planes, which route by the stub's member states) no request may fail. The
/// NGINX Plus and Application Gateway stubs have no data plane (users go through HAProxy's health checks). Every stub
/// must have seen every node go out and come back.
/// </summary>
public sealed class LoadBalancerKindsTests
{
    private readonly ITestOutputHelper _output;

    public LoadBalancerKindsTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(FrontKind.HAProxy)]
    [InlineData(FrontKind.Nginx)]
    [InlineData(FrontKind.NginxPlus)]
    [InlineData(FrontKind.Apache)]
    [InlineData(FrontKind.AzureAppGateway)]
    [InlineData(FrontKind.AwsElb)]
    [InlineData(FrontKind.F5BigIp)]
    public async Task A_profile_driven_upgrade_completes_through_the_kind(FrontKind kind)
    {
        // Two nodes, HTTP only: each stub has two members, and seven upgrades must fit the suite's budget.
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Front = kind, Nodes = 2, Simple = true });
        var front = lab.Front as IKindFront;
        var profilePath = lab.WriteProfile();
        Canary.AssertAbsent(File.ReadAllText(profilePath), "the profile");

        var variables = new Dictionary<string, object?> { ["bbProfile"] = profilePath, ["bbCredential"] = E2eLab.Credential };
        var lbCredential = "";
        if (front?.Credential is { } credential)
        {
            variables["bbLb"] = new Hashtable { ["lb1"] = credential };
            lbCredential = "-LoadBalancerCredential $bbLb";
        }
        using var session = new ModuleSession();
        var run = await session.RunAsync($"Invoke-BbRollingUpgrade -ProfilePath $bbProfile -Credential $bbCredential {lbCredential} -Confirm:$false -Verbose", variables);
        await lab.Load.StopAsync();
        lab.Print($"profile-driven upgrade through {kind}", run); // also asserts no secret in the run's output

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.Equal(2, run.Report!.NodesUpgraded);
        Assert.All(run.Report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
        await lab.AssertClusterOnAsync("8.19.4");
        foreach (var node in lab.Cluster.Nodes) front?.AssertWentOutAndBack(lab.Front.MemberOf(node));
        foreach (var file in Directory.EnumerateFiles(lab.JournalDir, "*", SearchOption.AllDirectories))
            Canary.AssertAbsent(File.ReadAllText(file), "the journal " + Path.GetFileName(file));
        if (front?.Real != false)
            Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed through {kind}: {lab.Load.FailureSummary}");
    }
}
