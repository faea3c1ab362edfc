using BitbucketZdu.Core.Upgrade.Ports;

namespace BitbucketZdu.Core.Tests.Upgrade.Fakes;

/// <summary>Virtual time: delays advance it instantly, so a 30 s drain costs nothing and timings are exact.</summary>
public sealed class VirtualClock : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _ticks;

    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks(Interlocked.Read(ref _ticks));
    public override long GetTimestamp() => Interlocked.Read(ref _ticks);
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public TimeSpan Now => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

    public UpgradeClock ToUpgradeClock() => new(this, Delay);

    /// <summary>The engine's poller on this clock (what <see cref="ToUpgradeClock"/>'s PollAsync runs on).</summary>
    public BitbucketZdu.Core.Timing.Poller ToPoller() => new(this, Delay);

    private Task Delay(TimeSpan d, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Advance(d);
        return Task.CompletedTask;
    }
}
