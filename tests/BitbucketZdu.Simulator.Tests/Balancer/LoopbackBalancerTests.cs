using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using BitbucketZdu.Simulator.Balancer;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests.Balancer;

public sealed class LoopbackBalancerTests : IAsyncLifetime
{
    private readonly TestBackend _node1 = new("node-1", TimeSpan.FromMilliseconds(40));
    private readonly TestBackend _node2 = new("node-2", TimeSpan.FromMilliseconds(40));
    private LoopbackBalancer _lb = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public async Task InitializeAsync()
    {
        _lb = await LoopbackBalancer.StartAsync(new BalancerOptions
        {
            Servers = new[] { new BalancerServerOptions("node-1", "127.0.0.1", _node1.Port), new BalancerServerOptions("node-2", "127.0.0.1", _node2.Port) },
            CheckInterval = TimeSpan.FromMilliseconds(100),
            // Generous: a loaded CI machine must not fail checks by slowness; DOWN is tested with a 503, not a timeout.
            CheckTimeout = TimeSpan.FromSeconds(3),
        });
    }

    private async Task<string> Admin(string line)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", _lb.AdminPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\n"));
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    private async Task<Dictionary<string, (string Status, int Scur)>> ShowStat()
    {
        var lines = (await Admin("show stat")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].TrimStart('#', ' ').Split(',');
        int col(string n) => Array.IndexOf(header, n);
        return lines.Skip(1).Select(l => l.Split(','))
            .Where(f => f[col("pxname")] == "bitbucket" && f[col("svname")].StartsWith("node"))
            .ToDictionary(f => f[col("svname")], f => (f[col("status")], int.Parse(f[col("scur")])));
    }

    [Fact]
    public async Task Round_robin_reaches_every_healthy_server()
    {
        var names = new List<string>();
        for (var i = 0; i < 6; i++) names.Add(await _http.GetStringAsync($"http://127.0.0.1:{_lb.Port}/"));
        Assert.Equal(3, names.Count(n => n == "node-1"));
        Assert.Equal(3, names.Count(n => n == "node-2"));
    }

    [Fact]
    public async Task A_server_failing_its_checks_goes_DOWN_and_gets_no_traffic()
    {
        _node2.Healthy = false;
        await Eventually.UntilAsync(async () => (await ShowStat())["node-2"].Status == "DOWN", TimeSpan.FromSeconds(5), "node-2 DOWN");
        for (var i = 0; i < 4; i++) Assert.Equal("node-1", await _http.GetStringAsync($"http://127.0.0.1:{_lb.Port}/"));
        _node2.Healthy = true;
        await Eventually.UntilAsync(async () => (await ShowStat())["node-2"].Status == "UP", TimeSpan.FromSeconds(5), "node-2 UP again");
    }

    [Fact]
    public async Task Draining_under_load_loses_no_request_and_a_ready_server_gets_traffic_again()
    {
        var failures = 0;
        var served = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var phase = 0; // 0 before drain, 1 drained (counted), 2 ready again
        var afterDrain = new ConcurrentDictionary<string, int>();
        var afterReady = new ConcurrentDictionary<string, int>();
        async Task Client()
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var p = Volatile.Read(ref phase);
                    var name = await _http.GetStringAsync($"http://127.0.0.1:{_lb.Port}/", stop.Token);
                    served.AddOrUpdate(name, 1, (_, n) => n + 1);
                    // Entirely inside the drained window: phase 1 when sent and still 1 when answered
                    // (phase moves to 2 before the server is made ready again).
                    if (p == 1 && Volatile.Read(ref phase) == 1) afterDrain.AddOrUpdate(name, 1, (_, n) => n + 1);
                    if (p == 2) afterReady.AddOrUpdate(name, 1, (_, n) => n + 1);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
                catch (HttpRequestException) { Interlocked.Increment(ref failures); }
            }
        }
        var clients = Enumerable.Range(0, 6).Select(_ => Task.Run(Client)).ToArray();
        await Eventually.UntilAsync(() => _node1.Served > 10 && _node2.Served > 10, TimeSpan.FromSeconds(10), "traffic on both nodes");

        Assert.Equal("\n", await Admin("set server bitbucket/node-1 state drain"));
        await Eventually.UntilAsync(async () => (await ShowStat())["node-1"] == ("DRAIN", 0), TimeSpan.FromSeconds(5), "node-1 drained to 0 sessions");
        Assert.Equal(0, _node1.InFlight);
        Volatile.Write(ref phase, 1);
        await Eventually.UntilAsync(() => afterDrain.Values.Sum() > 30, TimeSpan.FromSeconds(10), "requests while drained");

        Volatile.Write(ref phase, 2);
        Assert.Equal("\n", await Admin("set server bitbucket/node-1 state ready"));
        await Eventually.UntilAsync(() => afterReady.GetValueOrDefault("node-1") > 5, TimeSpan.FromSeconds(10), "node-1 back in rotation");
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.Equal(0, failures);
        Assert.Equal(0, _lb.FailedRequests);
        Assert.False(afterDrain.ContainsKey("node-1"), "a drained server received a new request");
    }

    [Theory]
    [InlineData("set server bitbucket/nope state drain", "No such server.\n\n")]
    [InlineData("set server nope/node-1 state drain", "No such backend.\n\n")]
    [InlineData("set server node-1 state drain", "Require 'backend/server'.\n\n")]
    [InlineData("set server bitbucket/node-1 state foo", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n")]
    public async Task Runtime_api_errors_use_haproxy_wording(string command, string expected)
    {
        Assert.Equal(expected, await Admin(command));
        Assert.Equal("UP", (await ShowStat())["node-1"].Status);
    }

    [Fact]
    public async Task Servers_state_reports_admin_bits_like_haproxy()
    {
        await Admin("set server bitbucket/node-1 state maint; set server bitbucket/node-2 state drain");
        var rows = (await Admin("show servers state bitbucket")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("1", rows[0]);
        Assert.StartsWith("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state", rows[1]);
        var admin = rows.Skip(2).Select(r => r.Split(' ')).ToDictionary(f => f[3], f => f[6]);
        Assert.Equal("1", admin["node-1"]);
        Assert.Equal("8", admin["node-2"]);
        Assert.Equal("MAINT", (await ShowStat())["node-1"].Status);
    }

    [Fact]
    public async Task An_operator_level_socket_refuses_changes()
    {
        await using var lb = await LoopbackBalancer.StartAsync(new BalancerOptions
        {
            AdminLevel = "operator",
            Servers = new[] { new BalancerServerOptions("node-1", "127.0.0.1", _node1.Port) },
        });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", lb.AdminPort);
        await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes("set server bitbucket/node-1 state maint\n"));
        Assert.Equal("Permission denied\n\n", await new StreamReader(tcp.GetStream()).ReadToEndAsync());
    }

    [Fact]
    public void Command_line_errors_are_refused_with_a_reason()
    {
        Assert.Contains("--server", Assert.Throws<FormatException>(() => BalancerCommand.Parse(new[] { "--listen", "0" })).Message);
        Assert.Contains("not <name>=<host>:<port>", Assert.Throws<FormatException>(() => BalancerCommand.Parse(new[] { "--server", "x" })).Message);
        var o = BalancerCommand.Parse(new[] { "--listen", "0", "--admin-port", "0", "--server", "n1=127.0.0.1:7990", "--admin-level", "operator" });
        Assert.Equal(("n1", 7990, "operator"), (o.Servers[0].Name, o.Servers[0].Port, o.AdminLevel));
    }

    public async Task DisposeAsync()
    {
        await _lb.DisposeAsync();
        _node1.Dispose();
        _node2.Dispose();
        _http.Dispose();
    }
}
