using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Tests.Timing;

/// <summary>The engine's one poll loop, on virtual time: every figure below is exact and costs no real time.</summary>
public sealed class PollerTests
{
    private static readonly PollSchedule Doubling = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), 2);

    [Fact]
    public async Task Pauses_follow_the_schedule_and_the_last_one_stops_at_the_deadline()
    {
        var time = new VirtualClock();
        var polls = new List<double>();
        var result = await time.ToPoller().PollAsync(_ => Task.FromResult("STARTING"), s => s == "ACTIVE",
            new PollOptions<string>(TimeSpan.FromSeconds(3), Doubling) { OnValue = _ => polls.Add(time.Now.TotalSeconds) }, CancellationToken.None);

        Assert.False(result.Reached);
        Assert.Equal("STARTING", result.Value);
        Assert.Null(result.LastError);
        Assert.Equal(new[] { 0, 0.1, 0.3, 0.7, 1.5, 2.5, 3.0 }, polls.Select(p => Math.Round(p, 3)));
        Assert.Equal(TimeSpan.FromSeconds(3), result.Elapsed);
    }

    [Fact]
    public async Task A_value_that_is_done_returns_at_once_with_it()
    {
        var time = new VirtualClock();
        var result = await time.ToPoller().PollAsync(_ => Task.FromResult(time.Now >= TimeSpan.FromSeconds(0.25) ? 2 : 1), n => n == 2,
            new PollOptions<int>(TimeSpan.FromSeconds(30), Doubling), CancellationToken.None);
        Assert.True(result.Reached);
        Assert.Equal(2, result.Value);
        Assert.Equal(0.3, Math.Round(time.Now.TotalSeconds, 3));
    }

    [Fact]
    public async Task Errors_the_rule_calls_transient_are_outlasted_and_the_last_is_kept_others_end_the_wait_at_once()
    {
        var time = new VirtualClock();
        var calls = 0;
        var heard = new List<string>();
        var result = await time.ToPoller().PollAsync<string>(_ => { calls++; throw new TimeoutException("no answer " + calls); }, _ => true,
            new PollOptions<string>(TimeSpan.FromSeconds(1), Doubling) { IsTransient = ex => ex is TimeoutException, OnTransientError = ex => heard.Add(ex.Message) },
            CancellationToken.None);
        Assert.False(result.Reached);
        Assert.Equal("no answer " + calls, result.LastError?.Message);
        Assert.Equal(calls, heard.Count);
        Assert.True(calls > 3);

        calls = 0;
        await Assert.ThrowsAsync<InvalidOperationException>(() => time.ToPoller().PollAsync<string>(_ => { calls++; throw new InvalidOperationException("bad"); }, _ => true,
            new PollOptions<string>(TimeSpan.FromSeconds(10), Doubling) { IsTransient = ex => ex is TimeoutException }, CancellationToken.None));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task The_default_rule_lets_no_error_through_and_refused_credentials_are_never_transient()
    {
        var time = new VirtualClock();
        await Assert.ThrowsAsync<TimeoutException>(() => time.ToPoller().PollAsync<int>(_ => throw new TimeoutException(), _ => true,
            new PollOptions<int>(TimeSpan.FromSeconds(10), Doubling), CancellationToken.None));
        Assert.Equal(TimeSpan.Zero, time.Now);

        var refused = new ZduApiException(ZduErrorKind.Unauthorized, "401", new Uri("https://bb.example.com/rest/zdu/cluster"), statusCode: 401);
        Assert.False(Transient.AllButRefusedCredentials(refused));
        Assert.True(Transient.AllButRefusedCredentials(new IOException("reset")));
        Assert.True(Transient.ZduRead(new ZduApiException(ZduErrorKind.Unreachable, "down", new Uri("https://bb.example.com/"))));
        Assert.False(Transient.ZduRead(refused));
    }

    [Fact]
    public async Task A_change_restarts_the_backoff()
    {
        var time = new VirtualClock();
        var polls = new List<double>();
        var last = "";
        await time.ToPoller().PollAsync(_ => Task.FromResult(time.Now >= TimeSpan.FromSeconds(1.5) ? "B" : "A"), _ => false,
            new PollOptions<string>(TimeSpan.FromSeconds(2.5), Doubling)
            {
                OnValue = _ => polls.Add(Math.Round(time.Now.TotalSeconds, 3)),
                RestartBackoffWhen = s => { var changed = last != "" && s != last; last = s; return changed; },
            }, CancellationToken.None);
        // 0, .1, .3, .7, 1.5 (A→B: back to 100 ms), 1.6, 1.8, 2.2, 2.5
        Assert.Equal(new[] { 0, 0.1, 0.3, 0.7, 1.5, 1.6, 1.8, 2.2, 2.5 }, polls);
    }

    [Fact]
    public async Task Cancellation_by_the_caller_goes_up_even_where_every_error_is_transient()
    {
        var time = new VirtualClock();
        using var cts = new CancellationTokenSource();
        var calls = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => time.ToPoller().PollAsync(ct =>
            {
                if (++calls == 3) cts.Cancel();
                ct.ThrowIfCancellationRequested();
                return Task.FromResult(0);
            }, _ => false, new PollOptions<int>(TimeSpan.FromMinutes(5), Doubling) { IsTransient = _ => true }, cts.Token));
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task A_probe_held_past_the_deadline_is_cut_off_and_the_wait_ends_not_reached()
    {
        var result = await Poller.System.PollAsync(async ct => { await Task.Delay(Timeout.Infinite, ct); return 0; }, _ => true,
            new PollOptions<int>(TimeSpan.FromMilliseconds(200), Doubling) { ProbeWithinDeadline = true }, CancellationToken.None);
        Assert.False(result.Reached);
    }

    [Fact]
    public async Task Retry_pauses_by_the_schedule_between_transient_failures_and_the_last_failure_goes_up()
    {
        var time = new VirtualClock();
        var retries = new List<(int Attempt, double Pause, double At)>();
        var calls = 0;
        var ex = await Assert.ThrowsAsync<IOException>(() => time.ToPoller().RetryAsync<int>(_ => throw new IOException("reset " + ++calls),
            e => e is IOException, 4, new PollSchedule(TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(1), 2),
            (_, attempt, pause) => retries.Add((attempt, pause.TotalSeconds, time.Now.TotalSeconds)), CancellationToken.None));
        Assert.Equal("reset 4", ex.Message);
        Assert.Equal(new[] { (2, 0.5, 0.0), (3, 1.0, 0.5), (4, 2.0, 1.5) }, retries);
        Assert.Equal(3.5, time.Now.TotalSeconds);

        calls = 0;
        Assert.Equal(7, await time.ToPoller().RetryAsync(_ => ++calls < 2 ? throw new IOException() : Task.FromResult(7), e => e is IOException, 4,
            new PollSchedule(TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(1), 2), null, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidOperationException>(() => time.ToPoller().RetryAsync<int>(_ => throw new InvalidOperationException(), e => e is IOException, 4,
            new PollSchedule(TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(1), 2), null, CancellationToken.None));
    }

    [Fact]
    public async Task What_the_judge_throws_goes_up_at_once_even_where_every_probe_error_is_transient()
    {
        var time = new VirtualClock();
        var ex = await Assert.ThrowsAsync<BbException>(() => time.ToPoller().PollAsync(_ => Task.FromResult("ERROR"),
            s => s == "ERROR" ? throw new BbException("UpgradeNodeError", BbErrorCategory.InvalidResult, "node in ERROR") : false,
            new PollOptions<string>(TimeSpan.FromMinutes(5), Doubling) { IsTransient = _ => true }, CancellationToken.None));
        Assert.Equal("UpgradeNodeError", ex.ErrorId);
        Assert.Equal(TimeSpan.Zero, time.Now);
    }

    [Fact]
    public async Task A_value_in_hand_is_judged_first_and_a_pause_the_value_asks_for_replaces_the_schedules()
    {
        var time = new VirtualClock();
        var probes = new List<double>();
        var result = await time.ToPoller().PollAsync(_ => { probes.Add(Math.Round(time.Now.TotalSeconds, 3)); return Task.FromResult(probes.Count); }, n => n == 3,
            new PollOptions<int>(TimeSpan.FromSeconds(30), Doubling) { PauseAfter = n => n == 1 ? TimeSpan.FromSeconds(5) : null }.StartingWith(0),
            CancellationToken.None);
        Assert.True(result.Reached);
        // 0 is in hand (no probe at 0 s); the first probe after the schedule's 100 ms; value 1 asks for 5 s; then the schedule's
        // interval, which went on growing meanwhile (0.1, 0.2, 0.4).
        Assert.Equal(new[] { 0.1, 5.1, 5.5 }, probes);
    }
}
