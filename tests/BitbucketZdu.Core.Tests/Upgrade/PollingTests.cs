using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Tests.Upgrade;

public sealed class PollingTests
{
    private static readonly UpgradeTimeouts Intervals = new() { FirstPollInterval = TimeSpan.FromMilliseconds(100), MaxPollInterval = TimeSpan.FromSeconds(1) };

    [Fact]
    public async Task Polling_starts_fast_backs_off_to_the_cap_and_notices_a_change_within_it()
    {
        var time = new VirtualClock();
        var clock = time.ToUpgradeClock();
        var polls = new List<TimeSpan>();
        var changeAt = TimeSpan.FromSeconds(7.3);

        var seen = await clock.PollAsync(_ => Task.FromResult(time.Now >= changeAt ? "OFFLINE" : "TERMINATING"), s => s == "OFFLINE", s => s,
            TimeSpan.FromSeconds(30), Intervals, "node OFFLINE", "UpgradeOfflineTimeout", CancellationToken.None, _ => polls.Add(time.Now));

        Assert.Equal("OFFLINE", seen);
        var gaps = polls.Zip(polls.Skip(1), (a, b) => b - a).ToList();
        Assert.Equal(new[] { 0.1, 0.2, 0.4, 0.8, 1.0, 1.0 }, gaps.Take(6).Select(g => Math.Round(g.TotalSeconds, 3)));
        Assert.All(gaps, g => Assert.True(g <= TimeSpan.FromSeconds(1)));
        Assert.InRange((time.Now - changeAt).TotalSeconds, 0, 1.0);
    }

    [Fact]
    public async Task A_timeout_names_what_was_awaited_and_the_last_state_seen()
    {
        var time = new VirtualClock();
        var clock = time.ToUpgradeClock();

        var ex = await Assert.ThrowsAsync<BbException>(() => clock.PollAsync(_ => Task.FromResult("STARTING"), s => s == "ACTIVE", s => "node-2 " + s,
            TimeSpan.FromSeconds(5), Intervals, "node-2 ACTIVE on 8.19.4", "UpgradeHealthTimeout", CancellationToken.None));

        Assert.Equal("UpgradeHealthTimeout", ex.ErrorId);
        Assert.Equal(BbErrorCategory.OperationTimeout, ex.Category);
        Assert.Contains("Timed out after 5 s waiting for node-2 ACTIVE on 8.19.4", ex.Message);
        Assert.Contains("Last seen: node-2 STARTING", ex.Message);
        Assert.InRange(time.Now.TotalSeconds, 5, 5.01);
    }

    [Fact]
    public async Task Probe_errors_count_as_not_yet_and_are_named_on_timeout()
    {
        var time = new VirtualClock();
        var ex = await Assert.ThrowsAsync<BbException>(() => time.ToUpgradeClock().PollAsync<string>(_ => throw new InvalidOperationException("connection refused"),
            _ => true, s => s, TimeSpan.FromSeconds(2), Intervals, "the API", "UpgradeOfflineTimeout", CancellationToken.None));
        Assert.Contains("Last seen: error: connection refused", ex.Message);
    }

    [Fact]
    public async Task Credentials_refused_by_the_API_end_the_wait_at_once_instead_of_at_its_deadline()
    {
        var time = new VirtualClock();
        var polls = 0;
        var ex = await Assert.ThrowsAsync<BitbucketZdu.Core.Api.ZduApiException>(() => time.ToUpgradeClock().PollAsync<string>(_ =>
            {
                polls++;
                throw new BitbucketZdu.Core.Api.ZduApiException(BitbucketZdu.Core.Api.ZduErrorKind.Unauthorized, "GET /rest/zdu/cluster returned 401. Check the credentials.");
            },
            _ => true, s => s, TimeSpan.FromSeconds(30), Intervals, "node-1 OFFLINE", "UpgradeOfflineTimeout", CancellationToken.None));
        Assert.Equal("ZduUnauthorized", ex.ErrorId);
        Assert.Equal(1, polls);
        Assert.Equal(TimeSpan.Zero, time.Now);
    }
}
