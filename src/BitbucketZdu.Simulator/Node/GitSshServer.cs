using System.Net;
using System.Net.Sockets;
using System.Text;
using BitbucketZdu.Simulator.Cluster;
using Microsoft.Extensions.Hosting;

namespace BitbucketZdu.Simulator.Node;

/// <summary>
/// The node's git-over-SSH port (<c>plugin.ssh.port</c>), speaking an SSH-like line exchange rather than SSH itself:
/// the server sends its banner <c>SSH-2.0-bbsim &lt;node&gt;</c>, the client sends one command line
/// (<c>git-upload-pack '/project/repo.git'</c>), the server streams pack lines for <c>bbsim.git.duration</c> and ends
/// with <c>done &lt;node&gt;</c>. A node that is not ACTIVE answers <c>ERROR</c> and closes. On a graceful stop the
/// listener closes at once (new clones are refused) and clones in flight may finish within the grace period, as
/// Kestrel lets HTTP requests finish; whatever is still running then is cut.
/// </summary>
public sealed class GitSshServer : IHostedService
{
    private readonly NodeRuntime _node;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _cut = new();
    private readonly List<Task> _sessions = new();
    private Task? _accept;

    public GitSshServer(NodeRuntime node)
    {
        _node = node;
        _listener = new TcpListener(IPAddress.Loopback, node.Config.SshPort);
    }

    public int InFlight { get { lock (_sessions) return _sessions.Count(s => !s.IsCompleted); } }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Graceful stop: no new clones; those in flight have until the host's shutdown timeout (the grace period).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _listener.Stop();
        if (_accept is not null) await _accept.ConfigureAwait(false);
        Task[] running;
        lock (_sessions) running = _sessions.Where(s => !s.IsCompleted).ToArray();
        if (running.Length > 0) _node.Log($"Git over SSH: {running.Length} clone(s) in flight may finish within the grace period.");
        try
        {
            await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _node.Log($"Git over SSH: grace period over; cutting {InFlight} clone(s) still in flight.");
            _cut.Cancel();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;   // listener stopped
            }
            lock (_sessions)
            {
                _sessions.RemoveAll(s => s.IsCompleted);
                _sessions.Add(Task.Run(() => SessionAsync(client)));
            }
        }
    }

    private async Task SessionAsync(TcpClient client)
    {
        using var _ = client;
        using var track = _node.TrackRequest(null);
        try
        {
            client.NoDelay = true;
            var stream = client.GetStream();
            var name = _node.Config.NodeName;
            if (_node.State != NodeStates.Active)
            {
                await WriteAsync(stream, $"ERROR {name} is {_node.State.ToLowerInvariant()}\n", _cut.Token).ConfigureAwait(false);
                return;
            }
            await WriteAsync(stream, $"SSH-2.0-bbsim {name}\r\n", _cut.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.ASCII, false, 256, leaveOpen: true);
            using var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(_cut.Token);
            readTimeout.CancelAfter(TimeSpan.FromSeconds(10));
            var command = await reader.ReadLineAsync(readTimeout.Token).ConfigureAwait(false);
            if (command is null || !(command.StartsWith("git-upload-pack ", StringComparison.Ordinal) || command.StartsWith("git-receive-pack ", StringComparison.Ordinal)))
            {
                await WriteAsync(stream, "ERROR expected git-upload-pack '<repo>'\n", _cut.Token).ConfigureAwait(false);
                return;
            }
            await GitStream.PumpAsync(_node.Config.GitDuration, line => WriteAsync(stream, line, _cut.Token), _cut.Token).ConfigureAwait(false);
            await WriteAsync(stream, $"done {name}\n", _cut.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the grace period ran out: the clone is cut.
        }
    }

    private static async Task WriteAsync(NetworkStream stream, string text, CancellationToken ct)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }
}

/// <summary>What a clone streams, over SSH or under /scm: a pack line every 100 ms for the clone's duration.</summary>
public static class GitStream
{
    public static async Task PumpAsync(TimeSpan duration, Func<string, Task> write, CancellationToken ct)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var i = 0;
        do
        {
            await write($"pack {i++:D4}\n").ConfigureAwait(false);
            var left = duration - sw.Elapsed;
            if (left <= TimeSpan.Zero) break;
            await Task.Delay(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
        }
        while (sw.Elapsed < duration);
    }
}
