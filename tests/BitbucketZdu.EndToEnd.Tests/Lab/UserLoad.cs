using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// Steady user traffic through the load balancer: a few bounded loops of <c>GET /?delayMs=20</c> (the simulator's user
/// endpoint), and, when asked, git clones over HTTP (<c>GET scm/...</c>, streamed for the clone's duration) and over SSH
/// (the simulator's SSH-like exchange on the load balancer's TCP frontend). Counts web requests, which node served each
/// (X-Bbsim-Node), every failure with its status code or error, and each kind of clone apart.
/// </summary>
public sealed class UserLoad : IAsyncDisposable
{
    private HttpClient _client = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30), UseCookies = false }) { Timeout = TimeSpan.FromSeconds(15) };
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = new();
    private readonly ConcurrentDictionary<string, int> _perNode = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private int _total;

    public UserLoad(Uri frontend, int concurrency = 3, int httpClones = 0, IPEndPoint? ssh = null, int sshClones = 0,
        System.Security.Cryptography.X509Certificates.X509Certificate2? trustedCa = null)
    {
        if (trustedCa is not null)
        {
            _client.Dispose();
            _client = new HttpClient(new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromSeconds(30),
                UseCookies = false,
                SslOptions = { RemoteCertificateValidationCallback = (_, cert, chain, errors) => TrustedBy(trustedCa, cert) },
            }) { Timeout = TimeSpan.FromSeconds(15) };
        }
        // Relative to the front (its context path kept): "<front>/?delayMs=20".
        var target = new Uri(frontend, "?delayMs=20");
        for (var i = 0; i < concurrency; i++) _loops.Add(Task.Run(() => LoopAsync(target)));
        var clone = new Uri(frontend, "scm/project/repo.git/info/refs?service=git-upload-pack");
        for (var i = 0; i < httpClones; i++) _loops.Add(Task.Run(() => CloneLoopAsync(GitKind.Http, HttpCloneAsync(clone, default))));
        if (ssh is not null)
            for (var i = 0; i < sshClones; i++) _loops.Add(Task.Run(() => CloneLoopAsync(GitKind.Ssh, SshCloneAsync(ssh, default))));
    }

    internal static bool TrustedBy(System.Security.Cryptography.X509Certificates.X509Certificate2 ca, System.Security.Cryptography.X509Certificates.X509Certificate? cert)
    {
        if (cert is null) return false;
        using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
        chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
        using var leaf = new System.Security.Cryptography.X509Certificates.X509Certificate2(cert);
        return chain.Build(leaf);
    }

    public enum GitKind { Http, Ssh }

    private sealed class Clone
    {
        public required GitKind Kind { get; init; }
        public string? Node;
        public bool? Ok;
    }

    private readonly ConcurrentDictionary<long, Clone> _clones = new();
    private readonly ConcurrentDictionary<long, string> _inFlightAtDrain = new();
    private readonly ConcurrentQueue<string> _gitFailures = new();
    private long _cloneIds;

    public int GitTotal(GitKind kind) => _clones.Values.Count(c => c.Kind == kind && c.Ok is not null);
    public int GitFailed(GitKind kind) => _clones.Values.Count(c => c.Kind == kind && c.Ok == false);
    public string GitFailureSummary => string.Join(", ", _gitFailures.GroupBy(f => f).Select(g => $"{g.Key} x{g.Count()}"));

    /// <summary>Web and git figures in one line, for the test output.</summary>
    public string Figures => $"web GETs {Total} (failed {Failed}), git clones over HTTP {GitTotal(GitKind.Http)} (failed {GitFailed(GitKind.Http)}), over SSH {GitTotal(GitKind.Ssh)} (failed {GitFailed(GitKind.Ssh)}), in flight when their node was drained {InFlightAtDrain} (completed {InFlightAtDrainCompleted})";

    /// <summary>Notes every clone in flight on <paramref name="node"/> now (call it as the node is taken out of rotation).</summary>
    public void MarkDrain(string node)
    {
        foreach (var (id, c) in _clones)
            if (c.Ok is null && c.Node == node) _inFlightAtDrain[id] = node;
    }

    public int InFlightAtDrain => _inFlightAtDrain.Count;
    public int InFlightAtDrainCompleted => _inFlightAtDrain.Keys.Count(id => _clones.TryGetValue(id, out var c) && c.Ok == true);
    public int InFlightAtDrainUnfinished => _inFlightAtDrain.Keys.Count(id => _clones.TryGetValue(id, out var c) && c.Ok is null);

    private async Task CloneLoopAsync(GitKind kind, Func<Clone, CancellationToken, Task> clone)
    {
        while (!_stop.IsCancellationRequested)
        {
            var c = new Clone { Kind = kind };
            var id = Interlocked.Increment(ref _cloneIds);
            _clones[id] = c;
            try
            {
                await clone(c, _stop.Token);
                c.Ok = true;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // The load stopped mid-clone: neither success nor failure.
                _clones.TryRemove(id, out _);
                _inFlightAtDrain.TryRemove(id, out _);
                return;
            }
            catch (Exception ex)
            {
                _gitFailures.Enqueue($"{kind}: {ex.GetType().Name}: {ex.Message}");
                c.Ok = false;
            }
        }
    }

    private Func<Clone, CancellationToken, Task> HttpCloneAsync(Uri url, CancellationToken _) => async (c, ct) =>
    {
        using var response = await _client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
        if ((int)response.StatusCode != 200) throw new InvalidOperationException($"HTTP {(int)response.StatusCode}");
        c.Node = response.Headers.TryGetValues("X-Bbsim-Node", out var v) ? v.First() : "?";
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!body.EndsWith($"done {c.Node}\n", StringComparison.Ordinal)) throw new InvalidOperationException("clone cut short: " + Tail(body));
    };

    private Func<Clone, CancellationToken, Task> SshCloneAsync(IPEndPoint ssh, CancellationToken _) => async (c, ct) =>
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await client.ConnectAsync(ssh, timeout.Token);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var banner = await reader.ReadLineAsync(timeout.Token) ?? throw new IOException("connection closed before the SSH banner");
        if (!banner.StartsWith("SSH-2.0-bbsim ", StringComparison.Ordinal)) throw new IOException("refused: " + banner);
        c.Node = banner["SSH-2.0-bbsim ".Length..].Trim();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("git-upload-pack '/project/repo.git'\n"), timeout.Token);
        string? line, last = null;
        while ((line = await reader.ReadLineAsync(timeout.Token)) is not null) last = line;
        if (last != $"done {c.Node}") throw new IOException("clone cut short after: " + (last ?? "nothing"));
    };

    private static string Tail(string s) => s.Length > 40 ? s[^40..] : s;

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
