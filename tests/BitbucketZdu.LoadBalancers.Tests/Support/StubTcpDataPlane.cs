using System.Net;
using System.Net.Sockets;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>
/// The TCP side of a stub load balancer (a layer-4 virtual server, e.g. git over SSH on port 7999): each connection is
/// sent to the backend (host:port) <c>choose</c> picks from the stub's member states (null: no member may take it, the
/// connection is closed at once) and relayed byte for byte until either side closes; <c>done</c> is told when it ends,
/// so the stub counts open connections as the member's current connections. Connections already open when a member
/// is disabled go on (a drain waits for them).
/// </summary>
public sealed class StubTcpDataPlane : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string?> _choose;
    private readonly Action<string>? _done;

    public StubTcpDataPlane(Func<string?> choose, Action<string>? done = null)
    {
        _choose = choose;
        _done = done;
        Port = FreePort.Next();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _ = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }
    public IPEndPoint Frontend => new(IPAddress.Loopback, Port);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        {
            if (_choose() is not string backend) return;
            try
            {
                using var upstream = new TcpClient();
                var colon = backend.LastIndexOf(':');
                await upstream.ConnectAsync(IPAddress.Parse(backend[..colon]), int.Parse(backend[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), _stop.Token);
                var a = client.GetStream();
                var b = upstream.GetStream();
                // The first side to finish ends the relay: the backend closing after a clone ends it for the client too.
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
            finally
            {
                _done?.Invoke(backend);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
