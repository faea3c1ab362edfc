using System.Collections.Concurrent;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// Steady user traffic through the load balancer: a few bounded loops of <c>GET /?delayMs=20</c> (the simulator's user
/// endpoint). Counts requests, which node served each (X-Bbsim-Node), and every failure with its status code or error.
/// </summary>
public sealed class UserLoad : IAsyncDisposable
{
    private readonly HttpClient _client = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromSeconds(15) };
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = new();
    private readonly ConcurrentDictionary<string, int> _perNode = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private int _total;

    public UserLoad(Uri frontend, int concurrency = 3)
    {
        var target = new Uri(frontend, "/?delayMs=20");
        for (var i = 0; i < concurrency; i++) _loops.Add(Task.Run(() => LoopAsync(target)));
    }

    public int Total => Volatile.Read(ref _total);
    public int Failed => _failures.Count;
    /// <summary>Requests sent a second time after their connection died before any answer (then served or counted failed).</summary>
    public int Retried => Volatile.Read(ref _retried);
    private int _retried;
    public IReadOnlyCollection<string> Failures => _failures.ToArray();
    public IReadOnlyDictionary<string, int> PerNode => new Dictionary<string, int>(_perNode);

    /// <summary>Failures grouped by what failed ("HTTP 503" x 4), for messages and the fault matrix.</summary>
    public string FailureSummary => string.Join(", ", _failures.GroupBy(f => f).Select(g => $"{g.Key} x{g.Count()}"));

    private async Task LoopAsync(Uri target)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                HttpResponseMessage response;
                try
                {
                    response = await _client.GetAsync(target, _stop.Token);
                }
                catch (HttpRequestException) when (!_stop.IsCancellationRequested)
                {
                    // What browsers and libcurl do: a GET that dies on a connection before any answer is sent once more
                    // on a fresh one (NGINX's graceful reload closes idle keep-alive connections under the client's feet).
                    // Counted apart; a second failure is a failed request.
                    Interlocked.Increment(ref _retried);
                    response = await _client.GetAsync(target, _stop.Token);
                }
                using (response)
                {
                    await response.Content.ReadAsStringAsync(_stop.Token);
                    if ((int)response.StatusCode == 200)
                        _perNode.AddOrUpdate(response.Headers.TryGetValues("X-Bbsim-Node", out var v) ? v.First() : "?", 1, (_, n) => n + 1);
                    else _failures.Enqueue($"HTTP {(int)response.StatusCode}");
                }
                Interlocked.Increment(ref _total);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _failures.Enqueue(ex.GetType().Name + ": " + ex.Message);
                Interlocked.Increment(ref _total);
            }
        }
    }

    /// <summary>Waits until every named node has served new requests: proof from the users' side that none is left out of rotation.</summary>
    public async Task AssertEveryNodeServesAsync(IEnumerable<string> nodes)
    {
        var before = PerNode;
        foreach (var node in nodes)
            await Eventually.UntilAsync(() => PerNode.GetValueOrDefault(node) > before.GetValueOrDefault(node) + 2,
                TimeSpan.FromSeconds(15), $"{node} serving user requests through the load balancer (served so far: {string.Join(", ", PerNode.Select(kv => kv.Key + "=" + kv.Value))})");
    }

    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested) _stop.Cancel();
        await Task.WhenAll(_loops);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _client.Dispose();
    }
}
