using System;
using System.Globalization;
using System.Linq;
using System.Net.Http;

namespace BitbucketZdu.Core.Timing
{
    /// <summary>The one reading of an HTTP Retry-After header, for every Polly retry that honours it.</summary>
    public static class RetryAfter
    {
        /// <summary>
        /// How long the server asks us to wait: delta seconds or an HTTP date (a date in the past is zero); null when the
        /// response has no usable Retry-After. Callers cap it at their own longest pause.
        /// </summary>
        public static TimeSpan? Of(HttpResponseMessage? response, TimeProvider? time = null)
        {
            if (response is null) return null;
            var header = response.Headers.RetryAfter;
            TimeSpan? delay = header?.Delta
                ?? (header?.Date is DateTimeOffset at ? at - (time ?? TimeProvider.System).GetUtcNow() : (TimeSpan?)null);
            if (delay is null && response.Headers.TryGetValues("Retry-After", out var raw)
                && int.TryParse(raw.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds))
                delay = TimeSpan.FromSeconds(seconds);
            return delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
        }
    }
}
