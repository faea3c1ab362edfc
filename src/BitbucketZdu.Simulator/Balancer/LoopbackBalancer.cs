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
/// as in HAProxy: no new requests, in-flight ones finish. Optionally HTTPS on the front and to the servers, and a TCP
/// frontend/backend for git over SSH (each connection to one server, bytes copied both ways; a drained server takes
/// no new connection and keeps the ones it has).
/// </summary>
public sealed class LoopbackBalancer : IAsyncDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host",
    };

    private readonly BalancerOptions _options;
    private readonly List<BackendServer> _servers;
    private readonly List<BackendServer> _sshServers;
    private readonly RuntimeApi _api;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private WebApplication? _app;
    private TcpListener? _admin;
    private Task? _adminLoop;
    private Task? _checkLoop;
    private TcpListener? _ssh;
    private Task? _sshLoop;
    private int _next;
    private int _nextSsh;

    private LoopbackBalancer(BalancerOptions options)
    {
        _options = options;
        _servers = options.Servers.Select((s, i) => new BackendServer(i + 1, s, options.Rise, options.Fall)).ToList();
        _sshServers = options.SshListenPort is null ? new List<BackendServer>()
            : options.SshServers.Select((s, i) => new BackendServer(i + 1, s, options.Rise, options.Fall)).ToList();
        _api = new RuntimeApi(options, _servers, _sshServers);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2),
        };
        if (options.ServerCaFile is not null)
        {
            // HTTPS to the servers, verified against that CA only (HAProxy's 'ssl verify required ca-file').
            handler.SslOptions = Tls.SimCertificates.TrustOnly(options.ServerCaFile);
        }
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _scheme = options.ServerCaFile is null ? "http" : "https";
    }

    private readonly string _scheme;

    public int Port { get; private set; }
    public int AdminPort { get; private set; }
    /// <summary>The git-over-SSH frontend's port, when it has one.</summary>
    public int? SshPort { get; private set; }
    public IReadOnlyList<BackendServer> Servers => _servers;
    public IReadOnlyList<BackendServer> SshServers => _sshServers;

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
        var certificate = _options.CertificateFile is null ? null
            : System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(_options.CertificateFile, _options.KeyFile);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, _options.ListenPort, listen =>
        {
            if (certificate is not null) listen.UseHttps(certificate);
        }));
        _app = builder.Build();
        _app.Run(ProxyAsync);
        await _app.StartAsync(cancellationToken);
        Port = new Uri(_app.Urls.First()).Port;

        _admin = new TcpListener(IPAddress.Loopback, _options.AdminPort);
        _admin.Start();
        AdminPort = ((IPEndPoint)_admin.LocalEndpoint).Port;
        _adminLoop = Task.Run(AdminLoopAsync);
        if (_options.SshListenPort is { } sshPort)
        {
            _ssh = new TcpListener(IPAddress.Loopback, sshPort);
            _ssh.Start();
            SshPort = ((IPEndPoint)_ssh.LocalEndpoint).Port;
            _sshLoop = Task.Run(SshLoopAsync);
        }
        _checkLoop = Task.Run(CheckLoopAsync);
    }

    private BackendServer? Pick(BackendServer? except) => Pick(_servers, ref _next, except);

    private static BackendServer? Pick(List<BackendServer> servers, ref int next, BackendServer? except)
    {
        var candidates = servers.Where(s => s.AcceptsNewRequests && s != except).ToList();
        if (candidates.Count == 0) return null;
        var i = (int)((uint)Interlocked.Increment(ref next) % (uint)candidates.Count);
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
                    $"{_scheme}://{server.Host}:{server.Port}{context.Request.PathBase}{context.Request.Path}{context.Request.QueryString}");
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
            await Task.WhenAll(_servers.Select(s => CheckAsync(s, s)).Concat(_sshServers.Select(CheckSshAsync)));
        }
        while (await WaitTickAsync(timer));
    }

    private async Task<bool> WaitTickAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stop.Token); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>An SSH server is checked on its node's HTTP check (HAProxy's 'check port'), else by a TCP connect.</summary>
    private async Task CheckSshAsync(BackendServer server)
    {
        var http = _servers.FirstOrDefault(s => s.Name == server.Name);
        if (http is not null)
        {
            await CheckAsync(server, http);
            return;
        }
        if ((server.AdminState & ServerAdminState.ForcedMaintenance) != 0) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(_options.CheckTimeout);
        bool passed;
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(server.Host, server.Port, cts.Token);
            passed = true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            if (_stop.IsCancellationRequested) return;
            passed = false;
        }
        server.RecordCheck(passed);
    }

    /// <summary>Checks <paramref name="server"/> by GET <c>CheckPath</c> on <paramref name="checkedAt"/>'s HTTP address.</summary>
    private async Task CheckAsync(BackendServer server, BackendServer checkedAt)
    {
        if ((server.AdminState & ServerAdminState.ForcedMaintenance) != 0) return; // maint disables checks, as in HAProxy
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(_options.CheckTimeout);
        bool passed;
        try
        {
            using var response = await _http.GetAsync($"{_scheme}://{checkedAt.Host}:{checkedAt.Port}{_options.CheckPath}", cts.Token);
            passed = response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            if (_stop.IsCancellationRequested) return;
            passed = false;
        }
        server.RecordCheck(passed);
    }

    private async Task SshLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _ssh!.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => RelaySshAsync(client));
        }
    }

    /// <summary>
    /// One git-over-SSH connection: to a server that takes new connections (one refused at connect time is marked
    /// failed and the next one tried, HAProxy's redispatch), then bytes both ways until either side closes. No server:
    /// the connection is closed, as HAProxy does in TCP mode.
    /// </summary>
    private async Task RelaySshAsync(TcpClient client)
    {
        using (client)
        {
            BackendServer? tried = null;
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var server = Pick(_sshServers, ref _nextSsh, tried);
                if (server is null) break;
                var upstream = new TcpClient();
                try
                {
                    using var connect = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    connect.CancelAfter(TimeSpan.FromSeconds(2));
                    await upstream.ConnectAsync(server.Host, server.Port, connect.Token);
                }
                catch (Exception ex) when (ex is SocketException or OperationCanceledException)
                {
                    upstream.Dispose();
                    if (_stop.IsCancellationRequested) return;
                    server.RecordCheck(false);
                    tried = server;
                    continue;
                }
                server.BeginSession();
                try
                {
                    using (upstream)
                    {
                        var down = client.GetStream();
                        var up = upstream.GetStream();
                        async Task Pump(NetworkStream from, NetworkStream to, Socket toSocket)
                        {
                            try { await from.CopyToAsync(to, _stop.Token); }
                            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
                            try { toSocket.Shutdown(SocketShutdown.Send); }
                            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
                        }
                        var toServer = Pump(down, up, upstream.Client);
                        var toClient = Pump(up, down, client.Client);
                        // The server closing ends the session (the client is told by the shutdown); a client that
                        // only stops sending waits for the server's answer.
                        await toClient;
                        client.Close();
                        upstream.Close();
                        await toServer;
                    }
                }
                finally
                {
                    server.EndSession();
                }
                return;
            }
            Interlocked.Increment(ref _failed);
        }
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
        _ssh?.Stop();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        foreach (var t in new[] { _adminLoop, _checkLoop, _sshLoop })
            if (t is not null) await t.ConfigureAwait(false);
        _http.Dispose();
        _stop.Dispose();
    }
}
