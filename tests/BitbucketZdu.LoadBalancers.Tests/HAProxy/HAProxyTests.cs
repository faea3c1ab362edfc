using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.LoadBalancers.HAProxy;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.HAProxy;

[Collection("HAProxy")]
public sealed class HAProxyTests : IClassFixture<HAProxyFixture>, IAsyncLifetime
{
    private readonly HAProxyFixture _fx;
    private readonly ITestOutputHelper _output;

    public HAProxyTests(HAProxyFixture fx, ITestOutputHelper output)
    {
        _fx = fx;
        _output = output;
    }

    public Task InitializeAsync() => _fx.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private static LoadBalancerOptions Fast(TimeSpan? drain = null) => new() { DrainTimeout = drain ?? TimeSpan.FromSeconds(10), HealthTimeout = TimeSpan.FromSeconds(10) };

    private async Task<IReadOnlyList<LoadBalancerMember>> MembersAsync()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        return await lb.GetMembersAsync(CancellationToken.None);
    }

    private async Task AssertUnchangedAsync()
    {
        var members = await MembersAsync();
        Assert.All(members, m => Assert.Equal(MemberAdminState.Ready, m.State));
    }

    [Fact]
    public async Task Drain_under_load_on_an_HA_pair_loses_no_request_and_the_member_gets_traffic_again()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        var removed = await DrainUnderLoad.RunAsync("HAProxy (pair: unix + tcp sockets)", new LoadBalancerController(lb), "node-1", _fx.Node1, _fx.Node2, _fx.Frontend, _output);
        Assert.Equal(MemberAdminState.Ready, removed.PreviousState);
        var after = (await lb.GetMembersAsync(CancellationToken.None)).Single(m => m.Name == "node-1");
        Assert.Equal(2, after.Instances.Count);
    }

    [Fact]
    public async Task Both_instances_of_the_pair_are_changed_and_read_back()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        var m = (await lb.GetMembersAsync(CancellationToken.None)).Single(x => x.Name == "node-2");
        var drained = await lb.SetStateAsync(m, MemberAdminState.Draining, CancellationToken.None);
        Assert.Equal(MemberAdminState.Draining, drained.State);
        Assert.All(drained.Instances, i => Assert.Contains("DRAIN", i));
        // Each instance on its own agrees.
        foreach (var ep in _fx.Pair().Endpoints)
        {
            using var single = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { ep }, "bitbucket"));
            Assert.Equal(MemberAdminState.Draining, (await single.FindMemberAsync("node-2", CancellationToken.None))!.State);
        }
        var maint = await lb.SetStateAsync(drained, MemberAdminState.Maintenance, CancellationToken.None);
        Assert.Equal(MemberAdminState.Maintenance, maint.State);
    }

    [Fact]
    public async Task Drain_waits_for_an_in_flight_request_and_reports_it()
    {
        _fx.Node1.SlowDelay = TimeSpan.FromSeconds(1.5);
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        using var client = new HttpClient();
        var slow = Enumerable.Range(0, 2).Select(_ => client.GetStringAsync(new Uri(_fx.Frontend, "slow"))).ToList();
        await Eventually.UntilAsync(() => _fx.Node1.InFlight > 0, TimeSpan.FromSeconds(5), "a slow request on node-1");
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.ActiveConnections > 0, TimeSpan.FromSeconds(5), "HAProxy counting its session");

        var result = await new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), new TestHost(), CancellationToken.None);

        Assert.True(result.ActiveAtDrainStart >= 1, $"active at start: {result.ActiveAtDrainStart}");
        Assert.False(result.DrainTimedOut);
        Assert.Equal(0, _fx.Node1.InFlight);
        Assert.Contains("node-1", await Task.WhenAll(slow)); // the in-flight request finished normally
        _output.WriteLine($"HAProxy: drain with one in-flight 1.5 s request took {result.DrainDuration.TotalMilliseconds:0} ms");
    }

    /// <summary>
    /// Bitbucket needs cookie-sticky sessions, and HAProxy's DRAIN still accepts persistent connections: a sticky user
    /// kept landing on the node being drained, and the drain lasted until no user happened to be mid-request. Taking
    /// the member out sends its sticky users to another server at once, lets the request already in flight finish,
    /// and returns as soon as it has.
    /// </summary>
    [Fact]
    public async Task Taking_a_member_out_sends_its_sticky_users_elsewhere_at_once_and_waits_only_for_the_request_in_flight()
    {
        var description = new LoadBalancerDescription(LoadBalancerKind.HAProxy, _fx.Pair().Endpoints, "sticky") { RequestTimeout = TimeSpan.FromSeconds(5) };
        using var lb = LoadBalancerFactory.Create(description);
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };
        async Task<string> StickyAsync(string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_fx.Frontend, path));
            request.Headers.Add("X-Sticky", "1");
            request.Headers.Add("Cookie", "SRV=node-1");
            using var response = await client.SendAsync(request);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadAsStringAsync()).Trim();
        }
        Assert.Equal("node-1", await StickyAsync("/"));
        Assert.Equal("node-1", await StickyAsync("/")); // the cookie pins the user to node-1, not round robin

        _fx.Node1.SlowDelay = TimeSpan.FromSeconds(3);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var slowEnded = TimeSpan.Zero;
        var slow = Task.Run(async () => { var body = await StickyAsync("/slow"); slowEnded = clock.Elapsed; return body; });
        await Eventually.UntilAsync(() => _fx.Node1.InFlight > 0, TimeSpan.FromSeconds(5), "the sticky user's slow request on node-1");
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.ActiveConnections > 0, TimeSpan.FromSeconds(5), "HAProxy counting its session");

        var options = new LoadBalancerOptions { DrainTimeout = TimeSpan.FromSeconds(20), HealthTimeout = TimeSpan.FromSeconds(10) };
        var remove = new LoadBalancerController(lb).RemoveAsync("node-1", options, new TestHost(), CancellationToken.None);
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.State != MemberAdminState.Ready, TimeSpan.FromSeconds(10), "node-1 leaving rotation");

        // While the member waits for its request in flight, the same user's next requests go to node-2.
        var during = new List<string>();
        for (var i = 0; i < 5; i++) during.Add(await StickyAsync("/"));
        Assert.False(remove.IsCompleted, "the sticky requests were meant to run while the removal waited for the slow one");
        Assert.All(during, body => Assert.Equal("node-2", body));

        var result = await remove;
        var removeEnded = clock.Elapsed;
        Assert.Equal("node-1", await slow); // the request in flight finished normally on its node
        Assert.Equal(MemberAdminState.Maintenance, result.State);
        Assert.False(result.DrainTimedOut);
        Assert.True(result.ActiveAtDrainStart >= 1, $"active at start: {result.ActiveAtDrainStart}");
        Assert.Equal(0, _fx.Node1.InFlight);
        // Done within moments of the last request in flight ending (HAProxy is polled every 100 ms).
        Assert.True(removeEnded - slowEnded < TimeSpan.FromSeconds(1.5), $"removal ended {(removeEnded - slowEnded).TotalMilliseconds:0} ms after the request in flight");
        _output.WriteLine($"HAProxy sticky: out of rotation at once, waited {result.DrainDuration.TotalMilliseconds:0} ms for the 3 s request in flight; " +
                          $"removal ended {(removeEnded - slowEnded).TotalMilliseconds:0} ms after it");
    }

    /// <summary>A run stopped between 'maint' and the end of the wait: taking the member out again still waits for its work in flight.</summary>
    [Fact]
    public async Task A_member_already_in_maintenance_is_still_waited_for_until_its_request_in_flight_ends()
    {
        _fx.Node1.SlowDelay = TimeSpan.FromSeconds(1.5);
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        using var client = new HttpClient();
        var slow = Enumerable.Range(0, 2).Select(_ => client.GetStringAsync(new Uri(_fx.Frontend, "slow"))).ToList();
        await Eventually.UntilAsync(() => _fx.Node1.InFlight > 0, TimeSpan.FromSeconds(5), "a slow request on node-1");
        var node1 = (await lb.FindMemberAsync("node-1", CancellationToken.None))!;
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.ActiveConnections > 0, TimeSpan.FromSeconds(5), "HAProxy counting its session");
        Assert.Equal(MemberAdminState.Maintenance, (await lb.SetStateAsync(node1, MemberAdminState.Maintenance, CancellationToken.None)).State);

        var result = await new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), new TestHost(), CancellationToken.None);

        Assert.False(result.Changed);
        Assert.Contains("Already out of rotation", result.Note);
        Assert.True(result.ActiveAtDrainStart >= 1, $"active at start: {result.ActiveAtDrainStart}");
        Assert.False(result.DrainTimedOut);
        Assert.Equal(0, _fx.Node1.InFlight);
        Assert.Contains("node-1", await Task.WhenAll(slow));
    }

    [Fact]
    public async Task A_drain_timeout_reports_the_connections_that_were_cut()
    {
        _fx.Node1.SlowDelay = TimeSpan.FromSeconds(3);
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        using var client = new HttpClient();
        var slow = Enumerable.Range(0, 2).Select(_ => client.GetStringAsync(new Uri(_fx.Frontend, "slow"))).ToList();
        await Eventually.UntilAsync(() => _fx.Node1.InFlight > 0, TimeSpan.FromSeconds(5), "a slow request on node-1");
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.ActiveConnections > 0, TimeSpan.FromSeconds(5), "HAProxy counting its session");
        var host = new TestHost();

        var result = await new LoadBalancerController(lb).RemoveAsync("node-1", Fast(TimeSpan.FromMilliseconds(500)), host, CancellationToken.None);

        Assert.True(result.DrainTimedOut);
        Assert.True(result.ConnectionsCut >= 1);
        Assert.Equal(MemberAdminState.Maintenance, result.State);
        Assert.Contains(host.Warnings, w => w.Contains("drain timeout"));
        await Task.WhenAll(slow);
    }

    [Fact]
    public async Task The_last_member_in_rotation_and_more_than_the_allowed_number_are_refused()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        var controller = new LoadBalancerController(lb);
        await controller.RemoveAsync("node-1", Fast(), new TestHost(), CancellationToken.None);

        var tooMany = await Assert.ThrowsAsync<BbException>(() => controller.RemoveAsync("node-2", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("LoadBalancerTooManyMembersOut", tooMany.ErrorId);
        var options = Fast();
        options.MaxMembersOut = 2;
        var last = await Assert.ThrowsAsync<BbException>(() => controller.RemoveAsync("node-2", options, new TestHost(), CancellationToken.None));
        Assert.Equal("LoadBalancerLastHealthyMember", last.ErrorId);
        Assert.Equal(MemberAdminState.Ready, (await lb.FindMemberAsync("node-2", CancellationToken.None))!.State);
    }

    [Fact]
    public async Task Cancelling_during_the_drain_puts_the_member_back()
    {
        _fx.Node1.SlowDelay = TimeSpan.FromSeconds(3);
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        using var client = new HttpClient();
        var slow = Enumerable.Range(0, 2).Select(_ => client.GetStringAsync(new Uri(_fx.Frontend, "slow"))).ToList();
        await Eventually.UntilAsync(() => _fx.Node1.InFlight > 0, TimeSpan.FromSeconds(5), "a slow request on node-1");
        await Eventually.UntilAsync(async () => (await lb.FindMemberAsync("node-1", CancellationToken.None))!.ActiveConnections > 0, TimeSpan.FromSeconds(5), "HAProxy counting its session");
        using var cts = new CancellationTokenSource();
        var host = new TestHost { OnProgress = p => { if (p.Activity.StartsWith("Draining") && !p.Completed) cts.Cancel(); } };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), host, cts.Token));

        var node1 = (await lb.FindMemberAsync("node-1", CancellationToken.None))!;
        Assert.Equal(MemberAdminState.Ready, node1.State);
        Assert.Contains(host.Warnings, w => w.Contains("put back to Ready"));
        await Task.WhenAll(slow);
    }

    [Fact]
    public async Task WhatIf_shows_the_exact_commands_and_changes_nothing()
    {
        using var lb = LoadBalancerFactory.Create(_fx.Pair());
        var host = new TestHost { Allow = false };
        var result = await new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), host, CancellationToken.None);
        Assert.True(result.WhatIf);
        Assert.False(result.Changed);
        Assert.Contains("set server bitbucket/node-1 state maint on unix://", result.Change);
        Assert.Contains("in flight", result.Change);
        Assert.DoesNotContain("state drain", result.Change);
        Assert.Contains(_fx.AdminTcpB, host.Asked.Single().Action);
        await AssertUnchangedAsync();
    }

    [Fact]
    public async Task A_socket_without_level_admin_gets_a_permission_error_and_nothing_changes()
    {
        var d = new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { _fx.OperatorSocketA }, "bitbucket");
        using var lb = LoadBalancerFactory.Create(d);
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), new TestHost(), CancellationToken.None));
        Assert.Equal("HAProxyPermissionDenied", ex.ErrorId);
        Assert.Contains("level admin", ex.Message);
        await AssertUnchangedAsync();
    }

    [Fact]
    public async Task When_the_second_instance_refuses_the_first_is_put_back()
    {
        // A pair whose second socket lacks 'level admin': the first instance changes, the second refuses.
        var d = new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { "unix://" + _fx.AdminSocketA, _fx.OperatorSocketA }, "bitbucket");
        using var lb = LoadBalancerFactory.Create(d);
        var host = new TestHost();
        var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("node-1", Fast(), host, CancellationToken.None));
        Assert.Equal("HAProxyPermissionDenied", ex.ErrorId);
        Assert.Contains(_fx.OperatorSocketA, ex.Message);
        await AssertUnchangedAsync();
    }

    [Fact]
    public async Task Wrong_backend_wrong_member_and_unreachable_endpoint_give_clear_errors()
    {
        using (var wrongBackend = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { _fx.AdminSocketA }, "nope")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => wrongBackend.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
            Assert.Contains("'nope'", ex.Message);
        }
        using (var lb = LoadBalancerFactory.Create(_fx.Pair()))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("node-9", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
            Assert.Contains("node-1", ex.Message); // lists what exists
        }
        var closed = FreePort.Next();
        using (var unreachable = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { _fx.AdminSocketA, $"tcp://127.0.0.1:{closed}" }, "bitbucket")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(unreachable).RemoveAsync("node-1", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerUnreachable", ex.ErrorId);
            Assert.Contains(closed.ToString(), ex.Message);
        }
        using (var missingSocket = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { _fx.Dir.File("none.sock") }, "bitbucket")))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => missingSocket.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerUnreachable", ex.ErrorId);
        }
        await AssertUnchangedAsync();
    }

    [Fact]
    public async Task Nodes_map_to_members_by_name_address_or_explicit_map()
    {
        var d = _fx.Pair();
        var members = await MembersAsync();
        Assert.Equal("node-2", MemberResolver.Resolve(d, new NodeRef("node-2"), members));
        Assert.Equal("node-1", MemberResolver.Resolve(d, new NodeRef("bb-a", "127.0.0.1", _fx.Node1.Port), members));
        d.MemberMap["bb-b"] = "node-2";
        Assert.Equal("node-2", MemberResolver.Resolve(d, new NodeRef("bb-b", "10.1.1.1"), members));
        var ex = Assert.Throws<BbException>(() => MemberResolver.Resolve(d, new NodeRef("bb-x", "10.9.9.9"), members));
        Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
    }

    [Fact]
    public void The_unix_endpoint_serialises_a_sockaddr_un()
    {
        var ep = new UnixSocketEndPoint("/run/x.sock");
        var sa = ep.Serialize();
        Assert.Equal(System.Net.Sockets.AddressFamily.Unix, sa.Family);
        Assert.Equal(2 + "/run/x.sock".Length + 1, sa.Size);
        Assert.Equal("/run/x.sock", ((UnixSocketEndPoint)ep.Create(sa)).Path);
        Assert.Throws<ArgumentException>(() => new UnixSocketEndPoint("/" + new string('x', 200)));
    }

    /// <summary>
    /// Backend 'slowrise' checks every 60 s and needs 3 good checks: a member its checks hold DOWN stays out of rotation
    /// for minutes. Once the caller's own health gate passed (HealthVerified), the balancer is told it is healthy at once
    /// on both instances; without that the controller waits for the checks, as before.
    /// </summary>
    [Fact]
    public async Task A_member_whose_health_gate_passed_is_marked_up_without_waiting_for_rise_checks()
    {
        var slow = new LoadBalancerDescription(LoadBalancerKind.HAProxy, _fx.Pair().Endpoints, "slowrise") { RequestTimeout = TimeSpan.FromSeconds(5) };
        using var lb = LoadBalancerFactory.Create(slow);
        async Task HoldDownAsync()
        {
            foreach (var ep in slow.Endpoints)
                Assert.Equal("", (await new HAProxyRuntimeClient(ep, TimeSpan.FromSeconds(5)).ExecuteAsync("set server slowrise/node-1 health down", CancellationToken.None)).Trim());
            Assert.Equal(MemberHealth.Down, (await lb.FindMemberAsync("node-1", CancellationToken.None))!.Health);
        }
        var controller = new LoadBalancerController(lb);

        await HoldDownAsync();
        var waiting = await Assert.ThrowsAsync<BbException>(() => controller.AddAsync("node-1",
            new LoadBalancerOptions { HealthTimeout = TimeSpan.FromSeconds(1) }, new TestHost(), CancellationToken.None));
        Assert.Equal("LoadBalancerMemberUnhealthy", waiting.ErrorId);

        await HoldDownAsync();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var added = await controller.AddAsync("node-1",
            new LoadBalancerOptions { HealthTimeout = TimeSpan.FromSeconds(30), HealthVerified = true }, new TestHost(), CancellationToken.None);
        Assert.True(added.MarkedHealthy);
        Assert.Equal(MemberHealth.Up, added.Health);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}; the checks alone would take minutes");
        var after = (await lb.FindMemberAsync("node-1", CancellationToken.None))!;
        Assert.All(after.Instances, i => Assert.Contains("UP", i));
    }
}

[CollectionDefinition("HAProxy")]
public sealed class HAProxyCollection { }
