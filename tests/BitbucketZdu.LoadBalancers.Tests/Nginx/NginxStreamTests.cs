using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.Nginx;

/// <summary>
/// Git over SSH through NGINX's <c>stream</c> module (TCP), as Atlassian's load-balancer requirement for Bitbucket Data
/// Center asks (HTTP and TCP modes): the module's NGINX provider edits the stream upstream exactly like the http one, so
/// a node drained there gets no new SSH session while the clone in flight finishes before the drain ends.
/// </summary>
public sealed class NginxStreamTests : IAsyncLifetime
{
    private const string StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so";
    private readonly TempDir _dir = new("bbzdu-ngxs");
    private readonly SshLikeBackend _ssh1 = new("ssh-1");
    private readonly SshLikeBackend _ssh2 = new("ssh-2");
    private readonly int _port = FreePort.Next();
    private ExternalProcess? _nginx;
    private string _command = "";

    private string UpstreamFile => _dir.File("stream-upstream.conf");

    public async Task InitializeAsync()
    {
        var nginx = RequiredTool.Find("nginx");
        if (!File.Exists(StreamModule))
            throw new InvalidOperationException($"NGINX's stream module ({StreamModule}) is not installed: run 'bash .ci/install-test-servers.sh' (as root) or install libnginx-mod-stream.");
        var d = _dir.Path;
        File.WriteAllText(UpstreamFile, $"upstream bitbucket_ssh {{\n    server {_ssh1.Address}; # ssh-1\n    server {_ssh2.Address};\n}}\n");
        File.WriteAllText(_dir.File("nginx.conf"), $@"
load_module {StreamModule};
pid {d}/nginx.pid;
worker_processes 1;
events {{ worker_connections 512; }}
stream {{
    include {UpstreamFile};
    server {{
        listen 127.0.0.1:{_port};
        proxy_pass bitbucket_ssh;
        proxy_connect_timeout 1s;
    }}
}}
");
        var args = new[] { "-c", _dir.File("nginx.conf"), "-p", d + "/", "-e", _dir.File("error.log") };
        _command = nginx + " " + string.Join(" ", args);
        _nginx = ExternalProcess.Start(nginx, args.Append("-g").Append("daemon off;"));
        await Eventually.UntilAsync(() => File.Exists(_dir.File("nginx.pid")) && Loopback.CanConnect(_port), TimeSpan.FromSeconds(15), "nginx stream listening; output: " + _nginx.Output);
    }

    public async Task DisposeAsync()
    {
        if (_nginx is not null) await _nginx.DisposeAsync();
        _ssh1.Dispose();
        _ssh2.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Draining_a_node_in_the_stream_upstream_lets_the_ssh_clone_in_flight_finish_and_sends_new_ones_elsewhere()
    {
        // A clone in flight through NGINX: the banner says which node took it.
        using var inFlight = new TcpClient();
        await inFlight.ConnectAsync(IPAddress.Loopback, _port);
        var reader = new StreamReader(inFlight.GetStream(), Encoding.ASCII);
        var banner = await reader.ReadLineAsync();
        var node = banner == "SSH-2.0-ssh-1" ? _ssh1 : banner == "SSH-2.0-ssh-2" ? _ssh2 : throw new Xunit.Sdk.XunitException("unexpected banner " + banner);
        var other = node == _ssh1 ? _ssh2 : _ssh1;
        await inFlight.GetStream().WriteAsync(Encoding.ASCII.GetBytes("git-upload-pack 3000\n"));
        var clone = Task.Run(async () =>
        {
            string? line, last = null;
            while ((line = await reader.ReadLineAsync()) is not null) last = line;
            return (Last: last, At: Stopwatch.GetTimestamp());
        });

        using var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.Nginx, new[] { UpstreamFile }, "bitbucket_ssh")
        {
            NginxCommand = _command, RequestTimeout = TimeSpan.FromSeconds(10),
        });
        var removed = await new LoadBalancerController(lb).RemoveAsync(node.Address,
            new LoadBalancerOptions { DrainTimeout = TimeSpan.FromSeconds(30), HealthTimeout = TimeSpan.FromSeconds(10) }, new TestHost(), CancellationToken.None);
        var drained = Stopwatch.GetTimestamp();

        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.False(removed.DrainTimedOut);
        Assert.Contains($"server {node.Address} down;", File.ReadAllText(UpstreamFile));
        // The drain waited for the SSH session: the clone ended whole, before the drain was reported done.
        var (last, doneAt) = await clone;
        Assert.Equal("done " + node.Name, last);
        Assert.True(doneAt <= drained, "the drain ended while the SSH clone was still in flight");
        for (var i = 0; i < 4; i++)
            Assert.Equal("SSH-2.0-" + other.Name, await BannerAsync());
    }

    private async Task<string?> BannerAsync()
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, _port);
        using var r = new StreamReader(c.GetStream(), Encoding.ASCII);
        return await r.ReadLineAsync();
    }

    /// <summary>
    /// A node's git-over-SSH port, as the simulator's: banner <c>SSH-2.0-&lt;name&gt;</c>, then for a line
    /// <c>git-upload-pack &lt;ms&gt;</c> pack lines for that long and <c>done &lt;name&gt;</c>.
    /// </summary>
    private sealed class SshLikeBackend : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();

        public SshLikeBackend(string name)
        {
            Name = name;
            _listener.Start();
            _ = AcceptLoopAsync();
        }

        public string Name { get; }
        public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        private async Task AcceptLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception) { return; }
                _ = ServeAsync(client);
            }
        }

        private async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    using var reader = new StreamReader(stream, Encoding.ASCII);
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"SSH-2.0-{Name}\n"), _stop.Token);
                    var request = await reader.ReadLineAsync(_stop.Token);
                    if (request is null || !int.TryParse(request.Split(' ').Last(), out var ms)) return;
                    var until = Stopwatch.GetTimestamp() + ms * Stopwatch.Frequency / 1000;
                    for (var n = 0; Stopwatch.GetTimestamp() < until; n++)
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes($"pack {n:D4}\n"), _stop.Token);
                        await Task.Delay(100, _stop.Token);   // the pace of the stream, not a synchronisation
                    }
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"done {Name}\n"), _stop.Token);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
                {
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }
}
