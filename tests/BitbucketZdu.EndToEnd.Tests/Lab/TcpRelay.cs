using System.Net;
using System.Net.Sockets;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// A loopback TCP relay the test can cut: the way the admin's machine reaches the cluster API. While cut, every open
/// connection is reset and every new one is reset as soon as it is accepted (the client sees "connection reset", as
/// when a firewall or a network path drops), so the API is unreachable; <see cref="Restore"/> lets traffic through again.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = new();
    private readonly Task _accept;
    private volatile bool _cut;

    public TcpRelay(Uri target)
    {
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        _targetUri = target;
        Port = FreePort.Next();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }
    private readonly Uri _targetUri;

    /// <summary>The target's URL through the relay: same scheme and path (TLS and the context path pass through).</summary>
    public Uri Url => new UriBuilder(_targetUri) { Host = "127.0.0.1", Port = Port }.Uri;
    /// <summary>Connections refused (reset at once) while cut.</summary>
    public int Refused => Volatile.Read(ref _refused);
    private int _refused;

    /// <summary>Cuts the path: resets every open connection and refuses new ones until <see cref="Restore"/>.</summary>
    public void Cut()
    {
        _cut = true;
        lock (_open)
        {
            foreach (var c in _open) Reset(c);
            _open.Clear();
        }
    }

    public void Restore() => _cut = false;

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            if (_cut)
            {
                Interlocked.Increment(ref _refused);
                Reset(client);
                continue;
            }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(_target, _stop.Token);
            lock (_open)
            {
                _open.Add(client);
                _open.Add(upstream);
            }
            var a = client.GetStream();
            var b = upstream.GetStream();
            // Half-close is passed on, not turned into a close: HAProxy's runtime API client shuts down its sending side
            // after the command and then reads the answer.
            await Task.WhenAll(PumpAsync(a, b, upstream), PumpAsync(b, a, client));
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            lock (_open)
            {
                _open.Remove(client);
                _open.Remove(upstream);
            }
            client.Dispose();
        }
    }

    private async Task PumpAsync(Stream from, Stream to, TcpClient toClient)
    {
        await from.CopyToAsync(to, _stop.Token);
        toClient.Client.Shutdown(SocketShutdown.Send);
    }

    private static void Reset(TcpClient c)
    {
        try
        {
            c.Client.LingerState = new LingerOption(true, 0);
            c.Client.Close();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        c.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accept;
        Cut();
        _stop.Dispose();
    }
}
