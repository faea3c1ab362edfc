using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Ports
{
    /// <summary>
    /// Time for the engine: wall clock for the journal, a monotonic clock for timings, and delays. Real time by default;
    /// tests pass a virtual <see cref="TimeProvider"/> and a delay that advances it, so waits cost no real time.
    /// </summary>
    public sealed class UpgradeClock
    {
        private readonly Func<TimeSpan, CancellationToken, Task> _delay;

        public UpgradeClock(TimeProvider time, Func<TimeSpan, CancellationToken, Task>? delay = null)
        {
            Time = time;
            _delay = delay ?? ((d, ct) => time.Delay(d, ct));
        }

        public static UpgradeClock System { get; } = new UpgradeClock(TimeProvider.System);

        public TimeProvider Time { get; }
        public DateTimeOffset UtcNow => Time.GetUtcNow();
        public long Timestamp => Time.GetTimestamp();
        public TimeSpan Since(long timestamp) => Time.GetElapsedTime(timestamp);
        public Task Delay(TimeSpan delay, CancellationToken cancellationToken) => _delay(delay, cancellationToken);

        /// <summary>
        /// Polls <paramref name="probe"/> until <paramref name="accept"/> holds, with intervals from
        /// <see cref="UpgradeTimeouts.FirstPollInterval"/> doubling to <see cref="UpgradeTimeouts.MaxPollInterval"/>.
        /// Errors of the probe count as "not yet" until the deadline, except the API refusing our credentials (401/403):
        /// waiting does not change that, so it goes up at once. On timeout: BbException <paramref name="errorId"/>
        /// naming the last state seen.
        /// </summary>
        public async Task<T> PollAsync<T>(Func<CancellationToken, Task<T>> probe, Func<T, bool> accept, Func<T, string> describe,
            TimeSpan timeout, UpgradeTimeouts intervals, string what, string errorId, CancellationToken cancellationToken,
            Action<T>? onEachPoll = null, Func<T, Exception?>? giveUp = null)
        {
            var started = Timestamp;
            var interval = intervals.FirstPollInterval;
            string lastSeen = "nothing yet";
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var value = await probe(cancellationToken).ConfigureAwait(false);
                    onEachPoll?.Invoke(value);
                    if (accept(value)) return value;
                    lastSeen = describe(value);
                    // A state that waiting will not change (a node in ERROR): up at once, not at the deadline.
                    if (giveUp?.Invoke(value) is { } hopeless) throw new PollGaveUpException(hopeless);
                }
                catch (PollGaveUpException gaveUp)
                {
                    throw gaveUp.InnerException!;
                }
                catch (Exception ex) when ((!(ex is OperationCanceledException) || !cancellationToken.IsCancellationRequested) && !CredentialsRefused(ex))
                {
                    lastSeen = "error: " + ex.Message;
                }
                var elapsed = Since(started);
                if (elapsed >= timeout)
                    throw new BbException(errorId, BbErrorCategory.OperationTimeout,
                        $"Timed out after {Format(timeout)} waiting for {what}. Last seen: {lastSeen}.");
                var wait = interval < timeout - elapsed ? interval : timeout - elapsed;
                await Delay(wait, cancellationToken).ConfigureAwait(false);
                var next = TimeSpan.FromTicks(interval.Ticks * 2);
                interval = next > intervals.MaxPollInterval ? intervals.MaxPollInterval : next;
            }
        }

        private sealed class PollGaveUpException : Exception
        {
            public PollGaveUpException(Exception inner) : base(inner.Message, inner) { }
        }

        /// <summary>The API refused our credentials or our rights: permanent until the admin fixes the credential.</summary>
        internal static bool CredentialsRefused(Exception ex) =>
            ex is Api.ZduApiException { CredentialsRefused: true };

        internal static string Format(TimeSpan t) =>
            t.TotalSeconds < 120 ? t.TotalSeconds.ToString("0.#", global::System.Globalization.CultureInfo.InvariantCulture) + " s"
                : t.TotalMinutes.ToString("0.#", global::System.Globalization.CultureInfo.InvariantCulture) + " min";
    }
}
