using System.Net;
using System.Net.Http.Headers;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Tests.Timing;

public sealed class RetryAfterTests
{
    private static HttpResponseMessage With(Action<HttpResponseHeaders> set)
    {
        var r = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        set(r.Headers);
        return r;
    }

    [Fact]
    public void Seconds_and_dates_are_read_from_now_on_the_given_clock_and_a_past_date_is_no_wait()
    {
        var time = new VirtualClock();
        using var seconds = With(h => h.TryAddWithoutValidation("Retry-After", "7"));
        using var date = With(h => h.RetryAfter = new RetryConditionHeaderValue(time.GetUtcNow().AddSeconds(30)));
        using var past = With(h => h.RetryAfter = new RetryConditionHeaderValue(time.GetUtcNow().AddSeconds(-30)));
        using var none = With(_ => { });

        Assert.Equal(TimeSpan.FromSeconds(7), RetryAfter.Of(seconds, time));
        Assert.Equal(TimeSpan.FromSeconds(30), RetryAfter.Of(date, time));
        Assert.Equal(TimeSpan.Zero, RetryAfter.Of(past, time));
        Assert.Null(RetryAfter.Of(none, time));
        Assert.Null(RetryAfter.Of(null));
    }
}
