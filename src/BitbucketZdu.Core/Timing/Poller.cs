using System;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Timing
{
    /// <summary>Poll intervals: <see cref="First"/>, growing by <see cref="Factor"/> up to <see cref="Max"/>.</summary>
    public sealed class PollSchedule
    {
        public PollSchedule(TimeSpan first, TimeSpan max, double factor)
        {
            First = first < max ? first : max;
            Max = max;
            Factor = Math.Max(1.0, factor);
        }

        public TimeSpan First { get; }
        public TimeSpan Max { get; }
        public double Factor { get; }

        public TimeSpan Next(TimeSpan current)
        {
            var next = TimeSpan.FromTicks((long)(current.Ticks * Factor));
            return next > Max ? Max : next;
        }
    }

    /// <summary>What one wait came to: reached or not, the last value read, and the error of the last read if it failed.</summary>
    public sealed class PollResult<T>
    {
        internal PollResult(bool reached, T? value, Exception? lastError, TimeSpan elapsed)
        {
            Reached = reached;
            Value = value;
            LastError = lastError;
            Elapsed = elapsed;
        }

        public bool Reached { get; }
        /// <summary>The last value read (default when every read failed).</summary>
        public T? Value { get; }
        /// <summary>The transient error of the last read, or null when the last read succeeded.</summary>
        public Exception? LastError { get; }
        public TimeSpan Elapsed { get; }
    }

    /// <summary>One poll's knobs; only <see cref="Timeout"/> and <see cref="Schedule"/> are required.</summary>
    public sealed class PollOptions<T>
    {
        public PollOptions(TimeSpan timeout, PollSchedule schedule)
        {
            Timeout = timeout;
            Schedule = schedule;
        }

        public TimeSpan Timeout { get; }
        public PollSchedule Schedule { get; }

        /// <summary>Which probe errors mean "not yet" (remembered, polling goes on); any other goes up at once. Default: none.</summary>
        public Func<Exception, bool> IsTransient { get; set; } = Transient.None;

        /// <summary>The probe's token is also cancelled when the deadline passes; a probe cut off so ends the wait as not reached.</summary>
        public bool ProbeWithinDeadline { get; set; }

        /// <summary>A value read (before it is judged).</summary>
        public Action<T>? OnValue { get; set; }

        /// <summary>A transient error of the probe.</summary>
        public Action<Exception>? OnTransientError { get; set; }

        /// <summary>The interval goes back to <see cref="PollSchedule.First"/> when this says the value changed.</summary>
        public Func<T, bool>? RestartBackoffWhen { get; set; }

        /// <summary>Before each pause, not reached yet: elapsed and remaining time (for progress bars).</summary>
        public Action<TimeSpan, TimeSpan>? OnWaiting { get; set; }

        /// <summary>The pause the value itself asks for (a server's Retry-After), instead of the schedule's; null: the schedule's.</summary>
        public Func<T, TimeSpan?>? PauseAfter { get; set; }

        /// <summary>The first value is already in hand (the answer that started the wait): it is judged first, then the probe runs after a pause.</summary>
        public PollOptions<T> StartingWith(T value)
        {
            _known = true;
            _first = value;
            return this;
        }

        internal bool TakeFirst(out T value)
        {
            value = _first!;
            if (!_known) return false;
            _known = false;
            _first = default;
            return true;
        }

        private bool _known;
        private T? _first;
    }

    /// <summary>Which errors waiting may outlast: the one place these rules are written.</summary>
    public static class Transient
    {
        /// <summary>Nothing: every probe error ends the wait.</summary>
        public static readonly Func<Exception, bool> None = _ => false;

        /// <summary>Reading the cluster API failed in a way a restarting node or balancer produces (unreachable, timeout, 5xx, odd page, 429).</summary>
        public static readonly Func<Exception, bool> ZduRead = ex => ex is Api.ZduApiException z &&
            (z.Kind == Api.ZduErrorKind.Unreachable || z.Kind == Api.ZduErrorKind.Timeout || z.Kind == Api.ZduErrorKind.ServerError
             || z.Kind == Api.ZduErrorKind.UnexpectedResponse || (z.StatusCode is int s && (s == 429 || s == 502 || s == 503 || s == 504)));

        /// <summary>Everything but the API refusing our credentials or rights (401/403): waiting does not change that.</summary>
        public static readonly Func<Exception, bool> AllButRefusedCredentials = ex => !(ex is Api.ZduApiException { CredentialsRefused: true });
    }

    /// <summary>
    /// The one poll loop of the engine, on the engine's clock (a virtual one in tests): probe, judge, and until the
    /// deadline pause by the schedule (never past the deadline) and probe again. Probe errors the caller's rule calls
    /// transient count as "not yet"; cancellation by the caller always goes up. The caller words its own timeout error
    /// from the <see cref="PollResult{T}"/> (see also <see cref="RetryAsync{T}"/> for retrying an action).
    /// </summary>
    public sealed class Poller
    {
        private readonly Func<TimeSpan, CancellationToken, Task> _delay;

        public Poller(TimeProvider time, Func<TimeSpan, CancellationToken, Task>? delay = null)
        {
            Time = time;
            _delay = delay ?? ((d, ct) => time.Delay(d, ct));
        }

        /// <summary>Real time.</summary>
        public static Poller System { get; } = new Poller(TimeProvider.System);

        public TimeProvider Time { get; }

        public Task Delay(TimeSpan delay, CancellationToken cancellationToken) => _delay(delay, cancellationToken);

        public async Task<PollResult<T>> PollAsync<T>(Func<CancellationToken, Task<T>> probe, Func<T, bool> done, PollOptions<T> options,
            CancellationToken cancellationToken)
        {
            var started = Time.GetTimestamp();
            var interval = options.Schedule.First;
            T? last = default;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Exception? error = null;
                var remaining = options.Timeout - Time.GetElapsedTime(started);
                var read = false;
                T value = default!;
                try
                {
                    if (options.TakeFirst(out var known)) value = known;
                    else if (options.ProbeWithinDeadline)
                    {
                        using var timer = Time.CreateCancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.FromMilliseconds(1));
                        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
                        value = await probe(deadline.Token).ConfigureAwait(false);
                    }
                    else value = await probe(cancellationToken).ConfigureAwait(false);
                    read = true;
                }
                catch (OperationCanceledException) when (options.ProbeWithinDeadline && !cancellationToken.IsCancellationRequested)
                {
                    return new PollResult<T>(false, last, null, Time.GetElapsedTime(started));
                }
                catch (Exception ex) when (!(ex is OperationCanceledException && cancellationToken.IsCancellationRequested) && options.IsTransient(ex))
                {
                    error = ex;
                    options.OnTransientError?.Invoke(ex);
                }
                // Judged outside the catch: what the caller's judge throws (a hopeless state) goes up as it is.
                if (read)
                {
                    last = value;
                    options.OnValue?.Invoke(value);
                    if (done(value)) return new PollResult<T>(true, value, null, Time.GetElapsedTime(started));
                    if (options.RestartBackoffWhen?.Invoke(value) == true) interval = options.Schedule.First;
                }
                var elapsed = Time.GetElapsedTime(started);
                if (elapsed >= options.Timeout) return new PollResult<T>(false, last, error, elapsed);
                remaining = options.Timeout - elapsed;
                options.OnWaiting?.Invoke(elapsed, remaining);
                var pause = (read ? options.PauseAfter?.Invoke(value) : null) ?? interval;
                await Delay(pause < remaining ? pause : remaining, cancellationToken).ConfigureAwait(false);
                interval = options.Schedule.Next(interval);
            }
        }

        /// <summary>
        /// Runs <paramref name="action"/> up to <paramref name="maxAttempts"/> times, pausing by <paramref name="schedule"/>
        /// after each failure <paramref name="isTransient"/> accepts; <paramref name="onRetry"/> hears the failure, the
        /// attempt about to start and the pause before it. The last failure, or any other, goes up as thrown.
        /// </summary>
        public async Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> action, Func<Exception, bool> isTransient, int maxAttempts,
            PollSchedule schedule, Action<Exception, int, TimeSpan>? onRetry, CancellationToken cancellationToken)
        {
            var pause = schedule.First;
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return await action(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (attempt < maxAttempts && !cancellationToken.IsCancellationRequested && isTransient(ex))
                {
                    onRetry?.Invoke(ex, attempt + 1, pause);
                    await Delay(pause, cancellationToken).ConfigureAwait(false);
                    pause = schedule.Next(pause);
                }
            }
        }
    }
}
