using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>Bitbucket drops an OFFLINE node from its version count, so it may offer finalizing while a node is down.</summary>
public sealed class FinalizeGuardTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task The_run_does_not_finalize_while_a_profile_node_is_offline()
    {
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == UpgradePhase.Finalizing) _f.World["node-3"].Running = false;
            return Task.CompletedTask;
        };
        var halted = await Assert.ThrowsAnyAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), CancellationToken.None));
        Assert.Equal("UpgradeFinalizeBlocked", halted.ErrorId);
        Assert.Contains("node-3", halted.Message);
        Assert.Equal(0, _f.World.Count("cluster:approve"));
    }

    public void Dispose() => _f.Dispose();
}
