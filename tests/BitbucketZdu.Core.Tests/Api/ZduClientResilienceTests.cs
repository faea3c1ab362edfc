using System.Diagnostics;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>GET retries under a deadline; POSTs sent once and reconciled by re-reading the cluster.</summary>
public sealed class ZduClientResilienceTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly List<string> _diagnostics = new();

    private ZduClient Client(Action<ZduClientOptions>? tweak = null)
    {
        var options = Options(_server.Url!);
        options.Diagnostic = m => { lock (_diagnostics) _diagnostics.Add(m); };
        tweak?.Invoke(options);
        return new ZduClient(options);
    }

    [Theory]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public async Task A_get_retries_transient_gateway_errors_and_then_succeeds(int status)
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(status), 2, Reply(Stable));
        using var client = Client();

        var cluster = await client.GetClusterAsync();

        Assert.Equal(ClusterState.STABLE, cluster.State);
        Assert.Equal(3, _server.Count("GET", "/rest/zdu/cluster"));
        Assert.Equal(2, _diagnostics.Count(d => d.Contains("retry")));
        Assert.Contains(_diagnostics, d => d.Contains(status.ToString()));
        Canary.AssertAbsent(string.Join("\n", _diagnostics), "the diagnostics");
    }

    [Fact]
    public async Task A_429_is_retried_after_the_servers_Retry_After()
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(429).WithHeader("Retry-After", "1"), 1, Reply(Stable));
        using var client = Client(o => o.MaxRetryDelay = TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();

        await client.GetClusterAsync();

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(950), $"retried after {clock.ElapsedMilliseconds} ms, before the Retry-After of 1 s");
        Assert.Equal(2, _server.Count("GET", "/rest/zdu/cluster"));
    }

    [Fact]
    public async Task A_slow_attempt_times_out_and_is_retried()
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Reply(Stable).WithDelay(TimeSpan.FromSeconds(2)), 1, Reply(Stable));
        using var client = Client(o => o.RequestTimeout = TimeSpan.FromMilliseconds(700));

        var cluster = await client.GetClusterAsync();

        Assert.Equal(ClusterState.STABLE, cluster.State);
        Assert.Contains(_diagnostics, d => d.Contains("no answer within 700 ms"));
        // WireMock logs the slow request only once its delayed answer is written.
        await Eventually.UntilAsync(() => _server.Count("GET", "/rest/zdu/cluster") == 2, TimeSpan.FromSeconds(5), "both attempts logged");
    }

    [Fact]
    public async Task Retries_stop_at_the_overall_deadline_with_the_last_failure_named()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(503));
        using var client = Client(o =>
        {
            o.MaxRetries = 1000;
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.MaxRetryDelay = TimeSpan.FromMilliseconds(40);
            o.RetryDeadline = TimeSpan.FromMilliseconds(400);
        });
        var clock = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
        Assert.Equal("ZduTimeout", ex.ErrorId);
        Assert.Contains("retry deadline of 400 ms", ex.Message);
        Assert.Contains("503", ex.Message);
        Assert.True(_server.Count("GET", "/rest/zdu/cluster") > 2);
    }

    [Fact]
    public async Task Exhausted_retries_report_the_last_answer_and_the_attempts()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(502));
        using var client = Client(o => o.MaxRetries = 2);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduServerError", ex.ErrorId);
        Assert.Contains("after 3 attempts", ex.Message);
        Assert.Equal(3, _server.Count("GET", "/rest/zdu/cluster"));
    }

    [Fact]
    public async Task A_refused_connection_is_retried_then_reported_as_unreachable()
    {
        var port = FreePort.Next();
        var options = Options($"http://127.0.0.1:{port}");
        options.MaxRetries = 2;
        var retries = 0;
        options.Diagnostic = _ => Interlocked.Increment(ref retries);
        using var client = new ZduClient(options);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduUnreachable", ex.ErrorId);
        Assert.Equal(BbErrorCategory.ConnectionError, ex.Category);
        Assert.Contains($"127.0.0.1:{port}", ex.Message);
        Assert.Contains("after 3 attempts", ex.Message);
        Assert.Equal(2, retries);
    }

    [Fact]
    public async Task The_callers_cancellation_stops_retrying_at_once()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(503));
        using var client = Client(o => { o.MaxRetries = 1000; o.RetryBaseDelay = TimeSpan.FromMilliseconds(50); o.RetryDeadline = TimeSpan.FromSeconds(30); });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetClusterAsync(cts.Token));
    }

    // ------------------------------------------------------------------ POSTs

    [Fact]
    public async Task A_post_is_never_retried_and_a_503_that_did_take_effect_returns_the_cluster()
    {
        _server.Answer("POST", "/rest/zdu/start", Response.Create().WithStatusCode(503));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(ReadyToUpgrade));
        using var client = Client();

        var cluster = await client.StartAsync();

        Assert.True(cluster.UpgradeModeEnabled);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/start"));
        Assert.Equal(1, _server.Count("GET", "/rest/zdu/cluster"));
        Assert.Contains(_diagnostics, d => d.Contains("took effect"));
    }

    [Fact]
    public async Task A_post_timeout_that_did_not_take_effect_says_so()
    {
        _server.Answer("POST", "/rest/zdu/start", Reply(ReadyToUpgrade).WithDelay(TimeSpan.FromSeconds(2)));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        using var client = Client(o => o.RequestTimeout = TimeSpan.FromMilliseconds(700));

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.StartAsync());

        Assert.Equal("ZduTimeout", ex.ErrorId);
        Assert.Contains("did not take effect", ex.Message);
        Assert.Contains("STABLE", ex.Message);
        Assert.Equal(ClusterState.STABLE, ex.Cluster!.State);
        await Eventually.UntilAsync(() => _server.Count("POST", "/rest/zdu/start") == 1, TimeSpan.FromSeconds(5), "the one POST logged");
    }

    [Theory]
    [InlineData("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":[],"links":[{"rel":"self","href":"/"},{"rel":"start","href":"/start"}]}""", true)]
    [InlineData("""{"upgradeModeEnabled":false,"state":"RUNNING_UPGRADE_TASKS","nodes":[],"links":[{"rel":"self","href":"/"}]}""", true)]
    [InlineData(ReadyToFinalize, false)]
    public async Task An_approve_504_is_reconciled_against_upgrade_mode_and_state(string after, bool tookEffect)
    {
        _server.Answer("POST", "/rest/zdu/approve", Response.Create().WithStatusCode(504));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(after));
        using var client = Client();

        if (tookEffect)
        {
            var cluster = await client.ApproveAsync();
            Assert.False(cluster.UpgradeModeEnabled);
        }
        else
        {
            var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.ApproveAsync());
            Assert.Equal("ZduServerError", ex.ErrorId);
            Assert.Contains("did not take effect", ex.Message);
        }
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/approve"));
    }

    [Fact]
    public async Task An_approve_500_that_took_effect_returns_the_cluster_after_a_re_read()
    {
        // Issue 12 problem 6: approve is documented with a 500; the cluster may be finalized all the same.
        _server.Answer("POST", "/rest/zdu/approve", Response.Create().WithStatusCode(500));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        using var client = Client();

        var cluster = await client.ApproveAsync();

        Assert.False(cluster.UpgradeModeEnabled);
        Assert.Equal(ClusterState.STABLE, cluster.State);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/approve"));
        Assert.Equal(1, _server.Count("GET", "/rest/zdu/cluster"));
        Assert.Contains(_diagnostics, d => d.Contains("took effect"));
    }

    [Fact]
    public async Task An_approve_500_that_did_not_take_effect_is_still_an_error()
    {
        _server.Answer("POST", "/rest/zdu/approve", Response.Create().WithStatusCode(500));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(ReadyToFinalize));
        using var client = Client();

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.ApproveAsync());

        Assert.Equal("ZduServerError", ex.ErrorId);
        Assert.Contains("did not take effect", ex.Message);
    }

    [Fact]
    public async Task A_cancel_502_that_took_effect_returns_the_cluster()
    {
        _server.Answer("POST", "/rest/zdu/cancel", Response.Create().WithStatusCode(502));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        using var client = Client();

        var cluster = await client.CancelAsync();

        Assert.False(cluster.UpgradeModeEnabled);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/cancel"));
    }

    [Fact]
    public async Task When_the_cluster_cannot_be_re_read_the_outcome_is_unknown()
    {
        _server.Answer("POST", "/rest/zdu/start", Response.Create().WithStatusCode(503));
        _server.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(503));
        using var client = Client(o => o.MaxRetries = 1);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.StartAsync());

        Assert.Equal("ZduOutcomeUnknown", ex.ErrorId);
        Assert.Contains("unknown", ex.Message);
        Assert.Contains("Get-BbClusterStatus", ex.Message);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/start"));
    }

    [Fact]
    public async Task A_post_to_a_refused_port_was_not_sent_and_is_not_reconciled()
    {
        var options = Options($"http://127.0.0.1:{FreePort.Next()}");
        var said = new List<string>();
        options.Diagnostic = said.Add;
        using var client = new ZduClient(options);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.StartAsync());

        Assert.Equal("ZduUnreachable", ex.ErrorId);
        Assert.DoesNotContain(said, d => d.Contains("Re-reading") || d.Contains("re-reading"));
    }

    [Fact]
    public async Task Ambient_diagnostics_reach_the_scope_that_made_the_call_only()
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(503), 1, Reply(Stable));
        using var client = Client();
        var scoped = new List<string>();

        using (ZduDiagnostics.ReportTo(scoped.Add))
            await client.GetClusterAsync();
        await client.GetClusterAsync();

        Assert.Single(scoped);
    }

    public void Dispose() => _server.Stop();
}
