using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Timing;
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
            Poller = new Poller(time, _delay);
        }

        public static UpgradeClock System { get; } = new UpgradeClock(TimeProvider.System);

        public TimeProvider Time { get; }
        public DateTimeOffset UtcNow => Time.GetUtcNow();
        public long Timestamp => Time.GetTimestamp();
        public TimeSpan Since(long timestamp) => Time.GetElapsedTime(timestamp);
        public Task Delay(TimeSpan delay, CancellationToken cancellationToken) => _delay(delay, cancellationToken);

        /// <summary>The engine's poller on this clock (<see cref="Timing.Poller"/>): every wait of the upgrade runs on it.</summary>
        public Poller Poller { get; }

        /// <summary>
        /// Polls <paramref name="probe"/> until <paramref name="accept"/> holds, with intervals from
        /// <see cref="UpgradeTimeouts.FirstPollInterval"/> doubling to <see cref="UpgradeTimeouts.MaxPollInterval"/>.
        /// Errors of the probe count as "not yet" until the deadline, except the API refusing our credentials (401/403):
        /// waiting does not change that, so it goes up at once (<see cref="Transient.AllButRefusedCredentials"/>; the loop is <see cref="Timing.Poller"/>). On timeout: BbException <paramref name="errorId"/>
        /// naming the last state seen.
        /// </summary>
        public async Task<T> PollAsync<T>(Func<CancellationToken, Task<T>> probe, Func<T, bool> accept, Func<T, string> describe,
            TimeSpan timeout, UpgradeTimeouts intervals, string what, string errorId, CancellationToken cancellationToken,
            Action<T>? onEachPoll = null, Func<T, Exception?>? giveUp = null)
        {
            string lastSeen = "nothing yet";
            var result = await Poller.PollAsync(probe, value =>
            {
                if (accept(value)) return true;
                lastSeen = describe(value);
                // A state that waiting will not change (a node in ERROR): up at once, not at the deadline.
                if (giveUp?.Invoke(value) is { } hopeless) throw hopeless;
                return false;
            }, new PollOptions<T>(timeout, new PollSchedule(intervals.FirstPollInterval, intervals.MaxPollInterval, 2))
            {
                IsTransient = Transient.AllButRefusedCredentials,
                OnValue = onEachPoll,
                OnTransientError = ex => lastSeen = "error: " + ex.Message,
            }, cancellationToken).ConfigureAwait(false);
            if (result.Reached) return result.Value!;
            throw new BbException(errorId, BbErrorCategory.OperationTimeout,
                $"Timed out after {Format(timeout)} waiting for {what}. Last seen: {lastSeen}.");
        }

        /// <summary>The API refused our credentials or our rights: permanent until the admin fixes the credential.</summary>
        internal static bool CredentialsRefused(Exception ex) =>
            ex is Api.ZduApiException { CredentialsRefused: true };

        internal static string Format(TimeSpan t) =>
            t.TotalSeconds < 120 ? t.TotalSeconds.ToString("0.#", global::System.Globalization.CultureInfo.InvariantCulture) + " s"
                : t.TotalMinutes.ToString("0.#", global::System.Globalization.CultureInfo.InvariantCulture) + " min";
    }
}
