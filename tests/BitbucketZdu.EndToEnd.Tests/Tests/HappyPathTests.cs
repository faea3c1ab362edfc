using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>The main job: Invoke-BbRollingUpgrade takes a live cluster behind a real load balancer to the new version with no failed user request.</summary>
public sealed class HappyPathTests
{
    private readonly ITestOutputHelper _output;

    public HappyPathTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(FrontKind.HAProxy)]
    [InlineData(FrontKind.Nginx)]
    public async Task Full_upgrade_under_steady_load_fails_no_user_request(FrontKind front)
    {
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions { Front = front });

        var run = await lab.InvokeRollingUpgradeAsync();
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print($"rolling upgrade through {front}", run);

        Assert.True(run.Succeeded, run.ErrorMessage);
        var report = run.Report!;
        Assert.Equal(3, report.NodesUpgraded);
        Assert.All(report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
        Assert.All(report.Nodes, n => Assert.True(n.OutOfRotation > TimeSpan.Zero, $"{n.Name} has no out-of-rotation window"));
        Assert.Equal("STABLE", report.FinalState);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Total > 50, $"only {lab.Load.Total} user requests: the load did not run through the upgrade");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        lab.Record($"happy path ({front})", "upgraded 3/3, STABLE", null, $"{report.Duration.TotalSeconds:0.0} s");
    }
}
