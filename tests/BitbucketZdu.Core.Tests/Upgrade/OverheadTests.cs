using System.Diagnostics;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>
/// With ports that cost nothing (virtual time), every real millisecond a run takes is the engine's own cost: journal
/// lines flushed to disk, state checks, planning. The target is under 1 s per node.
/// </summary>
public sealed class OverheadTests
{
    [Fact]
    public async Task The_engine_costs_well_under_a_second_per_node()
    {
        using var f = new UpgradeFixture(To, Enumerable.Range(1, 6).Select(i => "node-" + i).ToArray());
        var sw = Stopwatch.StartNew();

        var result = await f.Runner().RunAsync(f.Profile, Options(1), CancellationToken.None);

        sw.Stop();
        Assert.True(result.Report!.Succeeded);
        var perNode = sw.Elapsed / 6;
        Assert.True(perNode < TimeSpan.FromSeconds(1), $"engine overhead {perNode.TotalMilliseconds:0} ms per node");
        Console.WriteLine($"engine overhead: {sw.Elapsed.TotalMilliseconds:0} ms for 6 nodes, {perNode.TotalMilliseconds:0} ms per node (journal flushed to disk)");
    }
}
