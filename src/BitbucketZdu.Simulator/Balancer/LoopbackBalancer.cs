using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace BitbucketZdu.Simulator.Balancer;

/// <summary>
/// A small HTTP load balancer on loopback: round-robin over the servers that accept new requests, health checks on
/// <c>/status</c>, per-server session counts, and HAProxy's runtime API on a TCP admin socket. Drain and maint behave
/// as in HAProxy: no new requests, in-flight ones finish.
/// </summary>
public sealed class LoopbackBalancer : IAsyncDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host",
    };

    private readonly BalancerOptions _options;
    private readonly List<BackendServer> _servers;
    private readonly RuntimeApi _api;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private WebApplication? _app;
    private TcpListener? _admin;
    private Task? _adminLoop;
    private Task? _checkLoop;
    private int _next;

    private LoopbackBalancer(BalancerOptions options)
    {
        _options = options;
        _servers = options.Servers.Select((s, i) => new BackendServer(i + 1, s, options.Rise, options.Fall)).ToList();
        _api = new RuntimeApi(options, _servers);
        _http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2),
        })
        { Timeout = Timeout.InfiniteTimeSpan };
    }

    public int Port { get; private set; }
    public int AdminPort { get; private set; }
    public IReadOnlyList<BackendServer> Servers => _servers;

    /// <summary>Requests answered 5xx by the balancer itself (no server available, or the server failed).</summary>
    public long FailedRequests => Interlocked.Read(ref _failed);
    private long _failed;

    public static async Task<LoopbackBalancer> StartAsync(BalancerOptions options, CancellationToken cancellationToken = default)
    {
        var lb = new LoopbackBalancer(options);
        await lb.StartCoreAsync(cancellationToken);
        return lb;
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, _options.ListenPort));
        _app = builder.Build();
        _app.Run(ProxyAsync);
        await _app.StartAsync(cancellationToken);
        Port = new Uri(_app.Urls.First()).Port;

        _admin = new TcpListener(IPAddress.Loopback, _options.AdminPort);
        _admin.Start();
        AdminPort = ((IPEndPoint)_admin.LocalEndpoint).Port;
        _adminLoop = Task.Run(AdminLoopAsync);
        _checkLoop = Task.Run(CheckLoopAsync);
    }

    private BackendServer? Pick(BackendServer? except)
    {
        var candidates = _servers.Where(s => s.AcceptsNewRequests && s != except).ToList();
        if (candidates.Count == 0) return null;
        var i = (int)((uint)Interlocked.Increment(ref _next) % (uint)candidates.Count);
        return candidates[i];
    }

    private async Task ProxyAsync(HttpContext context)
    {
        // Buffer the request body so a request refused at connect time can be redispatched (HAProxy's redispatch).
        byte[]? body = null;
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            using var ms = new MemoryStream();
            await context.Request.Body.CopyToAsync(ms, context.RequestAborted);
            body = ms.ToArray();
        }

        BackendServer? tried = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var server = Pick(tried);
            if (server is null) break;
            server.BeginSession();
            try
            {
                using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method),
                    $"http://{server.Host}:{server.Port}{context.Request.Path}{context.Request.QueryString}");
                if (body is not null) request.Content = new ByteArrayContent(body);
                foreach (var h in context.Request.Headers)
                {
                    if (HopByHop.Contains(h.Key)) continue;
                    if (!request.Headers.TryAddWithoutValidation(h.Key, (IEnumerable<string>)h.Value!))
                        request.Content?.Headers.TryAddWithoutValidation(h.Key, (IEnumerable<string>)h.Value!);
                }
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
                context.Response.StatusCode = (int)response.StatusCode;
                foreach (var h in response.Headers.Concat(response.Content.Headers))
                    if (!HopByHop.Contains(h.Key)) context.Response.Headers[h.Key] = h.Value.ToArray();
                await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
                return;
            }
            catch (HttpRequestException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused } && !context.Response.HasStarted)
            {
                // Nothing reached the server: safe to try another one.
                server.RecordCheck(false);
                tried = server;
            }
            catch (HttpRequestException) when (!context.Response.HasStarted)
            {
                Interlocked.Increment(ref _failed);
                context.Response.StatusCode = StatusCodes.Status502BadGateway;
                await context.Response.WriteAsync("502 Bad Gateway\nThe server returned an invalid or incomplete response.\n");
                return;
            }
            finally
            {
                server.EndSession();
            }
        }

        Interlocked.Increment(ref _failed);
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        await context.Response.WriteAsync("503 Service Unavailable\nNo server is available to handle this request.\n");
    }

    private async Task CheckLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.CheckInterval);
        do
        {
            await Task.WhenAll(_servers.Select(CheckAsync));
        }
        while (await WaitTickAsync(timer));
    }

    private async Task<bool> WaitTickAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stop.Token); }
        catch (OperationCanceledException) { return false; }
    }

    private async Task CheckAsync(BackendServer server)
    {
        if ((server.AdminState & ServerAdminState.ForcedMaintenance) != 0) return; // maint disables checks, as in HAProxy
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(_options.CheckTimeout);
        bool passed;
        try
        {
            using var response = await _http.GetAsync($"http://{server.Host}:{server.Port}{_options.CheckPath}", cts.Token);
            passed = response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            if (_stop.IsCancellationRequested) return;
            passed = false;
        }
        server.RecordCheck(passed);
    }

    private async Task AdminLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _admin!.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => ServeAdminAsync(client));
        }
    }

    private async Task ServeAdminAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII, false, 1024, leaveOpen: true);
                var line = await reader.ReadLineAsync(_stop.Token);
                if (line is null) return;
                var answer = Encoding.ASCII.GetBytes(_api.Execute(line));
                await stream.WriteAsync(answer, _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _admin?.Stop();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        foreach (var t in new[] { _adminLoop, _checkLoop })
            if (t is not null) await t.ConfigureAwait(false);
        _http.Dispose();
        _stop.Dispose();
    }
}
