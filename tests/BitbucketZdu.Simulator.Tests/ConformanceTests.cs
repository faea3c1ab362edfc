using System.Net;
using System.Text.Json;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>The documented /rest/zdu behaviour, driven through the module's own ZduClient (docs: zdu-api.md §1–3).</summary>
public sealed class ConformanceTests
{
    [Fact]
    public async Task Every_node_answers_for_the_whole_cluster_with_itself_as_local()
    {
        await using var c = await SimCluster.StartAsync(2);
        for (var i = 0; i < 2; i++)
        {
            using var client = c.Client(i);
            var cluster = await client.GetClusterAsync();
            Assert.Equal(ClusterState.STABLE, cluster.State);
            Assert.False(cluster.UpgradeModeEnabled);
            Assert.Null(cluster.OriginalVersion);
            Assert.Equal(new[] { "node-1", "node-2" }, cluster.Nodes.Select(n => n.Name));
            Assert.Equal(c.Nodes[i].Name, Assert.Single(cluster.Nodes, n => n.Local).Name);
            Assert.All(cluster.Nodes, n =>
            {
                Assert.Equal("8.19.3", n.Version);
                Assert.Equal("8019003", n.BuildNumber);
                Assert.Equal("127.0.0.1", n.IpAddress);
                Assert.Equal(0, n.TasksTotal);
                Assert.Equal("/nodes/" + n.Id, Assert.Single(n.Links).Href);
            });
            Assert.Equal(new[] { "start" }, cluster.AllowedActions);

            var state = await client.GetStateAsync();
            Assert.Equal(ClusterState.STABLE, state.State);
            Assert.Equal(c.Nodes[i].Name, state.BuildInfo!.Name);
            Assert.True(state.BuildInfo.Local);

            var other = cluster.Nodes.Single(n => !n.Local);
            var byId = await client.GetNodeAsync(other.Id!);
            Assert.Equal(other.Name, byId.Name);
            Assert.Equal(NodeState.ACTIVE, byId.State);
        }
        using var client0 = c.Client();
        var notFound = await Assert.ThrowsAsync<ZduApiException>(() => client0.GetNodeAsync("no-such-node"));
        Assert.Equal(ZduErrorKind.NotFound, notFound.Kind);
    }

    [Fact]
    public async Task Start_and_cancel_follow_the_guards_and_links()
    {
        await using var c = await SimCluster.StartAsync(2);
        using var client = c.Client();

        // Only start is allowed in STABLE; cancel and approve answer 409 with an empty body.
        await AssertConflict(() => client.CancelAsync());
        await AssertConflict(() => client.ApproveAsync());
        await AssertConflict(() => client.RetryUpgradeAsync());

        var started = await client.StartAsync();
        Assert.Equal(ClusterState.READY_TO_UPGRADE, started.State);
        Assert.True(started.UpgradeModeEnabled);
        Assert.Equal("8.19.3", started.OriginalVersion);
        Assert.Equal(new[] { "cancel" }, started.AllowedActions);

        // Another node sees the same cluster.
        using var client2 = c.Client(1);
        Assert.Equal(ClusterState.READY_TO_UPGRADE, (await client2.GetClusterAsync()).State);

        await AssertConflict(() => client.StartAsync());
        await AssertConflict(() => client.ApproveAsync());

        var cancelled = await client2.CancelAsync();
        Assert.Equal(ClusterState.STABLE, cancelled.State);
        Assert.False(cancelled.UpgradeModeEnabled);
        Assert.Null(cancelled.OriginalVersion);
        Assert.Equal(new[] { "start" }, cancelled.AllowedActions);
    }

    [Fact]
    public async Task Conflict_has_an_empty_body_and_xsrf_is_checked()
    {
        await using var c = await SimCluster.StartAsync(1);
        using var http = SimCluster.Http();
        var url = new Uri(c.Nodes[0].Url, "rest/zdu/cancel");

        using var conflict = await http.PostAsync(url, Json());
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal("", await conflict.Content.ReadAsStringAsync());

        // A POST a browser form could send (no JSON content type, no X-Atlassian-Token) is refused before any change.
        using var xsrf = await http.PostAsync(new Uri(c.Nodes[0].Url, "rest/zdu/start"), null);
        Assert.Equal(HttpStatusCode.Forbidden, xsrf.StatusCode);
        Assert.Contains("XSRF", await xsrf.Content.ReadAsStringAsync());
        using var client = c.Client();
        Assert.Equal(ClusterState.STABLE, (await client.GetClusterAsync()).State);
    }

    [Fact]
    public async Task Authentication_is_Basic_for_a_sysadmin_like_the_real_server()
    {
        await using var c = await SimCluster.StartAsync(1);

        using (var wrong = c.Client(credential: ZduCredential.Basic(SimCluster.User, Canary.Secure("wrong-password"))))
        {
            var ex = await Assert.ThrowsAsync<ZduApiException>(() => wrong.GetClusterAsync());
            Assert.Equal(ZduErrorKind.Unauthorized, ex.Kind);
            Assert.Contains("Authentication failed", Assert.Single(ex.ServerMessages));
        }
        using (var token = c.Client(credential: ZduCredential.Bearer(Canary.Secure(Canary.Token))))
        {
            var ex = await Assert.ThrowsAsync<ZduApiException>(() => token.StartAsync());
            Assert.Equal(ZduErrorKind.TokenRefused, ex.Kind);
            Assert.Equal(403, ex.StatusCode);
        }
        using (var user = c.Client(credential: ZduCredential.Basic("alice", Canary.Secure("alice-password"))))
        {
            var ex = await Assert.ThrowsAsync<ZduApiException>(() => user.GetClusterAsync());
            Assert.Equal(ZduErrorKind.Forbidden, ex.Kind);
            Assert.Contains("system administrator", Assert.Single(ex.ServerMessages));
        }
        using (var anonymous = SimCluster.Http(admin: false))
        {
            using var r = await anonymous.GetAsync(new Uri(c.Nodes[0].Url, "rest/zdu/cluster"));
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal(401, doc.RootElement.GetProperty("status-code").GetInt32());
        }
        using var admin = c.Client();
        Assert.Equal(ClusterState.STABLE, (await admin.GetClusterAsync()).State);
    }

    [Fact]
    public async Task Status_and_user_endpoints_answer_name_and_version()
    {
        await using var c = await SimCluster.StartAsync(1, extraProperties: "bbsim.user.latency=300ms");
        using var http = SimCluster.Http(admin: false);
        using var status = await http.GetAsync(new Uri(c.Nodes[0].Url, "status"));
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        Assert.Equal("""{"state":"RUNNING"}""", await status.Content.ReadAsStringAsync());

        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var doc = JsonDocument.Parse(await http.GetStringAsync(c.Nodes[0].Url));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(280), $"the configured user latency applies (took {sw.ElapsedMilliseconds} ms)");
        Assert.Equal("node-1", doc.RootElement.GetProperty("node").GetString());
        Assert.Equal("8.19.3", doc.RootElement.GetProperty("version").GetString());

        using var props = JsonDocument.Parse(await http.GetStringAsync(new Uri(c.Nodes[0].Url, "rest/api/1.0/application-properties")));
        Assert.Equal("8019003", props.RootElement.GetProperty("buildNumber").GetString());
    }

    [Fact]
    public async Task A_stopped_node_shows_OFFLINE_in_upgrade_mode_and_disappears_outside_it()
    {
        await using var c = await SimCluster.StartAsync(3);
        var (code, output) = await c.StopNodeAsync(c.Nodes[2]);
        Assert.True(code == 0, output);
        await c.WaitForAsync(x => x.Nodes.Count == 2 && x.State == ClusterState.STABLE, "node-3 gone from the list outside upgrade mode");
        await c.StartNodeAsync(c.Nodes[2], c.Nodes[2].InstallDir);
        await c.WaitForAsync(x => x.Nodes.Count(n => n.State == NodeState.ACTIVE) == 3, "node-3 back");

        using var client = c.Client();
        await client.StartAsync();
        (code, output) = await c.StopNodeAsync(c.Nodes[2]);
        Assert.True(code == 0, output);
        var cluster = await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == "node-3" && n.State == NodeState.OFFLINE), "node-3 OFFLINE from the snapshot");
        var offline = cluster.Nodes.Single(n => n.Name == "node-3");
        Assert.Null(offline.Version);
        Assert.Null(offline.TasksTotal);
        Assert.Null(offline.ActiveUserCount);
        Assert.Equal(c.Nodes[2].Port, offline.PortNumber);
        // OFFLINE nodes are ignored by the state calculation: still READY_TO_UPGRADE, and cancel is allowed.
        Assert.Equal(ClusterState.READY_TO_UPGRADE, cluster.State);
        Assert.Equal(ClusterState.STABLE, (await client.CancelAsync()).State);
        await c.WaitForAsync(x => x.Nodes.Count == 2, "the snapshot wiped by cancel");
    }

    [Fact]
    public async Task A_killed_node_goes_OFFLINE_after_missed_heartbeats()
    {
        await using var c = await SimCluster.StartAsync(2);
        using var client = c.Client();
        await client.StartAsync();
        await SimCluster.KillAsync(c.Nodes[1]);
        var cluster = await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == "node-2").State == NodeState.OFFLINE, "node-2 OFFLINE");
        Assert.Equal(ClusterState.READY_TO_UPGRADE, cluster.State);
    }

    [Fact]
    public async Task Node_ids_change_on_restart_unless_configured_stable()
    {
        await using var c = await SimCluster.StartAsync(2);
        File.AppendAllText(Path.Combine(c.Nodes[1].Home, "bitbucket.properties"), "bbsim.node.id.stable=true\n");
        foreach (var n in c.Nodes)
        {
            Assert.Equal(0, (await c.StopNodeAsync(n)).ExitCode);
            await c.StartNodeAsync(n, n.InstallDir);
        }
        var before = (await c.WaitForAsync(x => x.Nodes.Count(n => n.State == NodeState.ACTIVE) == 2, "both back")).Nodes.ToDictionary(n => n.Name!, n => n.Id);
        foreach (var n in c.Nodes)
        {
            Assert.Equal(0, (await c.StopNodeAsync(n)).ExitCode);
            await c.StartNodeAsync(n, n.InstallDir);
        }
        var after = (await c.WaitForAsync(x => x.Nodes.Count(n => n.State == NodeState.ACTIVE) == 2, "both back again")).Nodes.ToDictionary(n => n.Name!, n => n.Id);
        Assert.NotEqual(before["node-1"], after["node-1"]);
        Assert.Equal(before["node-2"], after["node-2"]);
    }

    internal static async Task AssertConflict(Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<ZduApiException>(call);
        Assert.Equal(ZduErrorKind.InvalidState, ex.Kind);
        Assert.Equal(409, ex.StatusCode);
        Assert.Empty(ex.ServerMessages);
    }

    private static StringContent Json()
    {
        var content = new StringContent("");
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }
}
