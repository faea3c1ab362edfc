using System.Diagnostics;

namespace BitbucketZdu.TestSupport;

/// <summary>Polling with a deadline: the only way tests wait for something to happen (no bare sleeps).</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it is true or <paramref name="timeout"/> passes, then fails with <paramref name="what"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        var sw = Stopwatch.StartNew();
        var delay = interval ?? TimeSpan.FromMilliseconds(25);
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition().ConfigureAwait(false)) return;
                last = null;
            }
            catch (Exception ex)
            {
                last = ex;
            }
            if (sw.Elapsed > timeout)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}" + (last is null ? "" : $" (last error: {last.Message})"), last);
            await Task.Delay(delay).ConfigureAwait(false);
            if (delay < TimeSpan.FromMilliseconds(200)) delay += delay;
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? interval = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what, interval);

    /// <summary>Polls until <paramref name="probe"/> returns a value satisfying <paramref name="accept"/>; returns it.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> probe, Func<T, bool> accept, TimeSpan timeout, string what)
    {
        T value = default!;
        await UntilAsync(async () => accept(value = await probe().ConfigureAwait(false)), timeout, what).ConfigureAwait(false);
        return value;
    }
}
