using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.LoadBalancers.Nginx;
using BitbucketZdu.LoadBalancers.Tests.Support;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.Nginx;

public sealed class NginxTests : IClassFixture<NginxFixture>, IAsyncLifetime
{
    private readonly NginxFixture _fx;
    private readonly ITestOutputHelper _output;

    public NginxTests(NginxFixture fx, ITestOutputHelper output)
    {
        _fx = fx;
        _output = output;
    }

    public Task InitializeAsync() => _fx.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(15), HealthTimeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Drain_under_load_loses_no_request_and_the_member_gets_traffic_again()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        var removed = await DrainUnderLoad.RunAsync("NGINX", new LoadBalancerController(lb), _fx.Node1.Address, _fx.Node1, _fx.Node2, _fx.Frontend, _output);
        Assert.True(File.Exists(_fx.UpstreamFile + ".bbzdu.bak"), "a backup was kept");
        Assert.Equal(_fx.OriginalUpstream, File.ReadAllText(_fx.UpstreamFile)); // added back: the file is as it was
        Assert.Null(removed.Note);
    }

    [Fact]
    public async Task Nginx_t_and_the_reload_are_reported_with_their_result_and_time()
    {
        var calls = new List<LoadBalancerCallRecord>();
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            await new LoadBalancerController(lb).RemoveAsync(_fx.Node2.Address, Fast(), new TestHost(), CancellationToken.None);

        Assert.All(calls, c => Assert.Equal(LoadBalancerCallKind.Process, c.Kind));
        var test = Assert.Single(calls, c => c.Command!.EndsWith(" -t", StringComparison.Ordinal));
        Assert.Contains("syntax is ok", test.Result);
        var reload = Assert.Single(calls, c => c.Command!.EndsWith(" -s reload", StringComparison.Ordinal));
        Assert.NotNull(reload.Result);   // "ok", or nginx's "signal process started" notice
        Assert.Equal("Nginx", reload.Provider);
        Assert.True(reload.Elapsed > TimeSpan.Zero);
        Assert.DoesNotContain(calls, c => c.Result!.Contains("upstream", StringComparison.Ordinal)); // 'nginx -T' is not dumped into logs
    }

    [Fact]
    public async Task Remove_marks_only_the_server_down_keeps_a_backup_and_the_reload_drains_old_workers()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Describe());
        var result = await new LoadBalancerController(lb).RemoveAsync(_fx.Node2.Address, Fast(), new TestHost(), CancellationToken.None);

        Assert.Equal(MemberAdminState.Maintenance, result.State);
        var text = File.ReadAllText(_fx.UpstreamFile);
        Assert.Contains($"server {_fx.Node2.Address} max_fails=0 down;", text);
        Assert.Contains($"server {_fx.Node1.Address} max_fails=0; # node-1", text);
        Assert.Equal(_fx.OriginalUpstream, File.ReadAllText(_fx.UpstreamFile + ".bbzdu.bak"));
        Assert.False(result.DrainTimedOut);
        using var client = new HttpClient();
        for (var i = 0; i < 6; i++) Assert.Equal("node-1", await client.GetStringAsync(_fx.Frontend));
    }

    [Fact]
    public async Task Every_file_and_command_goes_through_the_node_shell_so_a_remote_host_works_the_same()
    {
        using var shell = new RecordingShell("lb-host");
        var d = _fx.Describe();
        d.Shell = shell;
        using var lb = LoadBalancerFactory.Create(d);
        var controller = new LoadBalancerController(lb);
        await controller.RemoveAsync(_fx.Node1.Address, Fast(), new TestHost(), CancellationToken.None);
        await controller.AddAsync(_fx.Node1.Address, Fast(), new TestHost(), CancellationToken.None);

        var calls = shell.Calls.ToArray();
        Assert.Contains("write " + _fx.UpstreamFile + ".bbzdu.bak", calls);
        Assert.Equal(2, calls.Count(c => c == "write " + _fx.UpstreamFile));
        Assert.Equal(2, calls.Count(c => c == $"run {_fx.Command} -t"));
        Assert.Equal(2, calls.Count(c => c == $"run {_fx.Command} -s reload"));
        Assert.Contains(calls, c => c.StartsWith("run ps ", StringComparison.Ordinal));
        Assert.Equal(_fx.OriginalUpstream, File.ReadAllText(_fx.UpstreamFile));

        var ex = await Assert.ThrowsAsync<BbException>(() => controller.RemoveAsync("10.9.9.9:1", Fast(), new TestHost(), CancellationToken.None));
        Assert.Contains("lb-host:" + _fx.UpstreamFile, ex.Message); // messages name the load-balancer host
    }

    [Fact]
    public async Task A_config_that_fails_nginx_t_is_restored_and_nginx_is_not_reloaded()
    {
        File.WriteAllText(_fx.Dir.File("broken.conf"), "events { } http { this is not nginx; }");
        var d = _fx.Describe();
        d.NginxCommand = $"{_fx.Nginx} -c {_fx.Dir.File("broken.conf")} -p {_fx.Dir.Path}/ -e {_fx.Dir.File("error.log")}";
        d.NginxPidFile = _fx.Dir.File("nginx.pid");
        using var lb = LoadBalancerFactory.Create(d);
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(_fx.Node1.Address, Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("NginxConfigTestFailed", ex.ErrorId);
        Assert.Equal(_fx.OriginalUpstream, File.ReadAllText(_fx.UpstreamFile));
    }

    [Fact]
    public async Task Wrong_upstream_wrong_member_missing_file_and_stopped_nginx_give_clear_errors()
    {
        using (var lb = LoadBalancerFactory.Create(_fx.Describe("nope")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
            Assert.Contains("bitbucket", ex.Message); // names the upstreams that exist
        }
        using (var lb = LoadBalancerFactory.Create(_fx.Describe()))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.9.9.9:7990", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
        }
        using (var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.Nginx, new[] { _fx.Dir.File("missing.conf") }, "bitbucket")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("NginxConfigNotFound", ex.ErrorId);
        }
        var stopped = _fx.Describe();
        stopped.NginxPidFile = _fx.Dir.File("no-such.pid");
        using (var lb = LoadBalancerFactory.Create(stopped))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync(_fx.Node1.Address, Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("NginxNotRunning", ex.ErrorId);
        }
        Assert.Equal(_fx.OriginalUpstream, File.ReadAllText(_fx.UpstreamFile));
    }

    [Fact]
    public void The_upstream_editor_changes_only_the_down_flag()
    {
        const string conf = "upstream a { server 10.0.0.9:1; }\nupstream bitbucket {\n  server 10.0.0.1:7990 weight=2; # main\n  # server 10.0.0.3:7990;\n  server 10.0.0.2:7990 backup;\n}\n";
        var down = NginxUpstreamConfig.SetDown(conf, "bitbucket", "10.0.0.2:7990", true);
        Assert.Contains("server 10.0.0.2:7990 backup down;", down);
        Assert.Contains("server 10.0.0.1:7990 weight=2; # main", down);
        var servers = NginxUpstreamConfig.Parse(down, "bitbucket")!;
        Assert.Equal(new[] { "10.0.0.1:7990", "10.0.0.2:7990" }, servers.Select(s => s.Address));
        Assert.True(servers[1].Down && servers[1].Backup);
        Assert.Equal(conf, NginxUpstreamConfig.SetDown(down, "bitbucket", "10.0.0.2:7990", false));
        Assert.Null(NginxUpstreamConfig.Parse(conf, "nope"));
    }
}
