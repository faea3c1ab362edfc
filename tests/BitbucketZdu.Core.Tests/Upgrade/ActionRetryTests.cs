using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>A cluster action that failed without taking effect is sent again, on the engine's clock, at most 4 times.</summary>
public sealed class ActionRetryTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task A_start_that_did_not_take_effect_is_sent_again_after_growing_pauses()
    {
        _f.World.FailStartTimes = 2;

        await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None);

        Assert.Equal(2, _f.World.Count("cluster:start-failed"));
        Assert.Equal(1, _f.World.Count("cluster:start"));
        var retries = _f.Host.Warnings.Where(w => w.Contains("Trying again in")).ToList();
        Assert.Equal(2, retries.Count);
        Assert.Contains("Trying again in 0.5 s (attempt 2 of 4).", retries[0]);
        Assert.Contains("Trying again in 1 s (attempt 3 of 4).", retries[1]);
    }

    [Fact]
    public async Task After_four_attempts_the_failure_goes_up_and_nothing_was_started()
    {
        _f.World.FailStartTimes = 10;

        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        Assert.Equal(4, _f.World.Count("cluster:start-failed"));
        Assert.Equal(0, _f.World.Count("cluster:start"));
        Assert.Contains(_f.Host.Warnings, w => w.Contains("Trying again in 2 s (attempt 4 of 4)."));
    }

    public void Dispose() => _f.Dispose();
}
