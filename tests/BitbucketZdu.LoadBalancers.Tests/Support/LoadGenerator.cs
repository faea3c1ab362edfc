using System.Collections.Concurrent;
using System.Diagnostics;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>
/// Steady load through a load balancer: a few bounded loops of GETs on loopback. Counts successes per backend (the
/// body names it) and every failure (non-200 or transport error), with what failed.
/// </summary>
public sealed class LoadGenerator : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = new();
    private readonly ConcurrentDictionary<string, int> _perBackend = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private int _total;
    private readonly int _slowEvery;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <param name="slowEvery">Every n-th request of a loop goes to /slow (a long request), so a drain has work in flight to wait for; 0 = never.</param>
    public LoadGenerator(Uri target, int concurrency = 4, int slowEvery = 0)
    {
        _slowEvery = slowEvery;
        _client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = TimeSpan.FromSeconds(20) };
        for (var i = 0; i < concurrency; i++) _loops.Add(Task.Run(() => LoopAsync(target)));
    }

    public int Total => Volatile.Read(ref _total);
    public int Failed => _failures.Count;
    public IReadOnlyCollection<string> Failures => _failures.ToArray();
    public int CountFor(string backend) => _perBackend.TryGetValue(backend, out var n) ? n : 0;
    public TimeSpan Elapsed => _clock.Elapsed;

    private async Task LoopAsync(Uri target)
    {
        var slow = new Uri(target, "slow");
        for (var n = 1; !_stop.IsCancellationRequested; n++)
        {
            try
            {
                // In-flight requests are never cancelled: stopping lets each finish (aborted client connections left
                // httpd's per-member busy count wrong for the next test, which then drained against a false count).
                using var response = await _client.GetAsync(_slowEvery > 0 && n % _slowEvery == 0 ? slow : target);
                var body = await response.Content.ReadAsStringAsync();
                if ((int)response.StatusCode == 200) _perBackend.AddOrUpdate(body.Trim(), 1, (_, n) => n + 1);
                else _failures.Enqueue($"HTTP {(int)response.StatusCode}: {body.Trim()}");
                Interlocked.Increment(ref _total);
            }
            catch (Exception ex)
            {
                _failures.Enqueue(ex.GetType().Name + ": " + ex.Message);
                Interlocked.Increment(ref _total);
            }
        }
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
