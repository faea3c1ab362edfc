using System.Diagnostics;
using System.Net;
using System.Text;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>Faults switched on per node or cluster-wide, by file in the shared home or through the admin endpoint.</summary>
public sealed class FaultInjectionTests
{
    [Fact]
    public async Task Fail_start_puts_the_node_in_ERROR_and_blocks_finalization()
    {
        await using var c = await SimCluster.StartAsync(2);
        using var client = c.Client();
        await client.StartAsync();
        var node = c.Nodes[1];
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
        c.SetFaults(node.Name, """{"failStart": true}""");
        await c.StartNodeAsync(node, await c.InstallAsync(node, "8.19.4"));

        var mixed = await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.ERROR, "node-2 in ERROR");
        Assert.Equal(ClusterState.MIXED, mixed.State);
        await ConformanceTests.AssertConflict(() => client.ApproveAsync());
        using var http = SimCluster.Http(admin: false);
        using var status = await http.GetAsync(new Uri(node.Url, "status"));
        Assert.Equal((HttpStatusCode)500, status.StatusCode);
        Assert.Equal("""{"state":"ERROR"}""", await status.Content.ReadAsStringAsync());
        Assert.Contains("failStart", node.Log);
    }

    [Fact]
    public async Task Slow_start_shows_STARTING_with_503_on_status()
    {
        await using var c = await SimCluster.StartAsync(2);
        var node = c.Nodes[1];
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
        using (var http = SimCluster.Http())
        {
            // Through the admin endpoint of another node.
            using var put = await http.PutAsync(new Uri(c.Nodes[0].Url, "bbsim/admin/faults/node-2"), new StringContent("""{"startDelayMs": 4000}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }
        var sw = Stopwatch.StartNew();
        await c.StartNodeAsync(node, node.InstallDir);
        using var anonymous = SimCluster.Http(admin: false);
        await Eventually.UntilAsync(async () =>
        {
            using var r = await anonymous.GetAsync(new Uri(node.Url, "status"));
            return r.StatusCode == HttpStatusCode.ServiceUnavailable && await r.Content.ReadAsStringAsync() == """{"state":"STARTING"}""";
        }, SimCluster.Wait, "STARTING 503 on /status");
        Assert.Equal(NodeState.STARTING, (await c.WaitForAsync(x => x.Nodes.Count == 2, "node-2 listed")).Nodes.Single(n => n.Name == node.Name).State);
        await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.ACTIVE, "node-2 ACTIVE after its slow start");
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(4), $"the start took {sw.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task Hang_on_stop_keeps_the_node_TERMINATING_until_it_is_killed()
    {
        await using var c = await SimCluster.StartAsync(2);
        using var client = c.Client();
        await client.StartAsync();
        var node = c.Nodes[1];
        c.SetFaults(node.Name, """{"hangOnStop": true}""");

        var (code, output) = await c.StopNodeAsync(node, new Dictionary<string, string> { ["BITBUCKET_STOP_WAIT"] = "2" });
        Assert.Equal(1, code);
        Assert.Contains("did not stop within 2 s", output);
        var terminating = await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.TERMINATING, "node-2 TERMINATING");
        Assert.Equal(ClusterState.READY_TO_UPGRADE, terminating.State);

        await SimCluster.KillAsync(node);
        await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.OFFLINE, "node-2 OFFLINE after missed heartbeats");
    }

    [Fact]
    public async Task Api_error_bursts_latency_and_refused_connections()
    {
        await using var c = await SimCluster.StartAsync(2);
        // Without retries, so each 503 of the burst is seen (the module's client retries them; proven below).
        using var client = c.Client(retries: 0);

        c.SetFaults("cluster", """{"apiErrorCount": 2, "apiErrorStatus": 503}""");
        await Eventually.UntilAsync(async () =>
        {
            try { await client.GetStateAsync(); return false; }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.ServerError) { return true; }
        }, SimCluster.Wait, "the burst to begin");
        var failures = 1;
        while (true)
        {
            try { await client.GetStateAsync(); break; }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.ServerError && ex.StatusCode == 503) { failures++; }
        }
        Assert.Equal(2, failures);

        // The module's client rides out the same burst with its retries.
        c.SetFaults("cluster", """{"apiErrorCount": 2, "apiErrorStatus": 503}""");
        using (var retrying = c.Client())
            Assert.Equal(ClusterState.STABLE, (await retrying.GetStateAsync()).State);

        c.SetFaults("cluster", """{"apiLatencyMs": 700}""");
        await Eventually.UntilAsync(async () =>
        {
            var sw = Stopwatch.StartNew();
            await client.GetClusterAsync();
            return sw.ElapsedMilliseconds >= 700;
        }, SimCluster.Wait, "700 ms of API latency");

        c.SetFaults("cluster", "{}");
        c.SetFaults("node-2", """{"refuseConnections": true}""");
        using var client2 = c.Client(1, retries: 0);
        await Eventually.UntilAsync(async () =>
        {
            try { await client2.GetClusterAsync(); return false; }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.Unreachable) { return true; }
        }, SimCluster.Wait, "node-2 refusing connections");
        // The process still runs and heartbeats: the other nodes see it ACTIVE.
        Assert.Equal(NodeState.ACTIVE, (await client.GetClusterAsync()).Nodes.Single(n => n.Name == "node-2").State);

        using (var http = SimCluster.Http())
        using (var delete = await http.DeleteAsync(new Uri(c.Nodes[0].Url, "bbsim/admin/faults/node-2")))
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await Eventually.UntilAsync(async () => (await client2.GetClusterAsync()).State == ClusterState.STABLE, SimCluster.Wait, "node-2 answering again");
    }

    [Fact]
    public async Task Failed_upgrade_tasks_are_retried()
    {
        await using var c = await SimCluster.StartAsync(1);
        var node = c.Nodes[0];
        using var client = c.Client();
        await client.StartAsync();
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
        await c.StartNodeAsync(node, await c.InstallAsync(node, "8.19.4"));
        await c.WaitForAsync(x => x.State == ClusterState.READY_TO_RUN_UPGRADE_TASKS, "the node on 8.19.4");
        c.SetFaults("cluster", """{"upgradeTasksFail": true}""");
        await Eventually.UntilAsync(async () =>
        {
            using var http = SimCluster.Http();
            return (await http.GetStringAsync(new Uri(node.Url, "bbsim/admin/faults/cluster"))).Contains("true", StringComparison.Ordinal);
        }, SimCluster.Wait, "fault visible");

        var failed = await client.ApproveAsync();
        Assert.Equal(ClusterState.UPGRADE_TASKS_FAILED, failed.State);
        Assert.True(failed.HasFinalizationTasks);
        Assert.Equal(new[] { "retryUpgrade" }, failed.AllowedActions);
        await ConformanceTests.AssertConflict(() => client.StartAsync());

        var retried = await client.RetryUpgradeAsync();
        Assert.Equal(ClusterState.STABLE, retried.State);
        Assert.Equal("8.19.4", Assert.Single(retried.Nodes).Version);
    }

    [Fact]
    public async Task The_admin_endpoint_needs_a_sysadmin_and_rejects_unknown_settings()
    {
        await using var c = await SimCluster.StartAsync(1);
        var url = new Uri(c.Nodes[0].Url, "bbsim/admin/faults/cluster");
        using (var anonymous = SimCluster.Http(admin: false))
        using (var r = await anonymous.PutAsync(url, new StringContent("""{"failStart": true}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        using var http = SimCluster.Http();
        using (var r = await http.PutAsync(url, new StringContent("""{"failStrat": true}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("failStrat", await r.Content.ReadAsStringAsync());
        }
        Assert.False(File.Exists(Path.Combine(c.Shared, "bbsim", "faults", "cluster.json")));
    }

    [Fact]
    public async Task A_changed_admin_password_refuses_the_old_one_and_is_masked_in_the_log()
    {
        await using var c = await SimCluster.StartAsync(1);
        var changed = SimCluster.Password + "-changed";
        using var http = SimCluster.Http();
        using (var r = await http.PutAsync(new Uri(c.Nodes[0].Url, "bbsim/admin/faults/cluster"),
            new StringContent($$"""{"adminPassword": "{{changed}}"}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        using var old = c.Client();
        var ex = await Assert.ThrowsAsync<ZduApiException>(() => old.GetClusterAsync());
        Assert.Equal(ZduErrorKind.Unauthorized, ex.Kind);
        using var renewed = c.Client(credential: ZduCredential.Basic(SimCluster.User, Canary.Secure(changed)));
        Assert.Equal(ClusterState.STABLE, (await renewed.GetClusterAsync()).State);
        Canary.AssertAbsent(c.Nodes[0].Log, "node log");
    }
}
