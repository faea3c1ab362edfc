using System.Net;
using System.Text;
using System.Text.Json;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>
/// The API as the rolling-upgrade plugin really answers (zdu-api.md §2, §5, §12; sources in docs/simulator.md), each
/// switched on by a fault: JSON without portNumber, names "Not configured", a node back on a new address, DRAINING,
/// /status FIRST_RUN and MAINTENANCE, null state, finalization tasks that take time or fail, approve's 500.
/// </summary>
public sealed class PluginShapeTests
{
    private static async Task<JsonElement> RawClusterAsync(SimCluster c, int via = 0)
    {
        using var http = SimCluster.Http();
        return JsonDocument.Parse(await http.GetStringAsync(new Uri(c.Nodes[via].Url, "rest/zdu/cluster"))).RootElement.Clone();
    }

    private static IEnumerable<JsonElement> Rows(JsonElement cluster) => cluster.GetProperty("nodes").EnumerateArray();

    /// <summary>Sets a fault file and waits until every live node serves it on its admin endpoint; nodes apply it at their next heartbeat, so tests poll for the effect.</summary>
    private static async Task SetFaultsAsync(SimCluster c, string target, string json, string visible)
    {
        c.SetFaults(target, json);
        await Eventually.UntilAsync(async () =>
        {
            using var http = SimCluster.Http();
            foreach (var n in c.Nodes)
                if (n.Pid is not null && !(await http.GetStringAsync(new Uri(n.Url, "bbsim/admin/faults/" + target))).Contains(visible, StringComparison.Ordinal))
                    return false;
            return true;
        }, SimCluster.Wait, "fault " + json + " visible");
    }

    [Fact]
    public async Task Node_json_as_the_plugin_writes_it_has_no_portNumber_and_names_Not_configured()
    {
        await using var c = await SimCluster.StartAsync(2);
        Assert.All(Rows(await RawClusterAsync(c)), r => Assert.True(r.TryGetProperty("portNumber", out _)));

        await SetFaultsAsync(c, "cluster", """{"omitPortNumber": true, "namesNotConfigured": true}""", "true");
        // The fault is read at each heartbeat: poll until the answering node applies it.
        var raw = await Eventually.ValueAsync(() => RawClusterAsync(c), x => Rows(x).All(r => !r.TryGetProperty("portNumber", out _)), SimCluster.Wait, "rows without portNumber");
        Assert.All(Rows(raw), r => Assert.Equal("Not configured", r.GetProperty("name").GetString()));
        Assert.Equal(2, Rows(raw).Select(r => r.GetProperty("id").GetString()).Distinct().Count());

        // The module's client reads it.
        using var client = c.Client();
        var cluster = await client.GetClusterAsync();
        Assert.All(cluster.Nodes, n => Assert.Null(n.PortNumber));
        Assert.All(cluster.Nodes, n => Assert.Equal("Not configured", n.Name));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_node_back_on_a_new_address_leaves_a_stale_OFFLINE_row(bool stableIds)
    {
        await using var c = await SimCluster.StartAsync(2, extraProperties: $"bbsim.node.id.stable={(stableIds ? "true" : "false")}");
        using var client = c.Client();
        await client.StartAsync();
        var node = c.Nodes[1];
        var before = Rows(await RawClusterAsync(c)).Single(r => r.GetProperty("name").GetString() == node.Name);
        Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
        c.SetFaults(node.Name, """{"ipAddress": "127.0.0.2"}""");
        await c.StartNodeAsync(node, node.InstallDir);

        var raw = await Eventually.ValueAsync(() => RawClusterAsync(c),
            x => Rows(x).Any(r => r.GetProperty("ipAddress").GetString() == "127.0.0.2" && r.GetProperty("state").GetString() == "ACTIVE"),
            SimCluster.Wait, "node-2 ACTIVE on 127.0.0.2");
        var rows = Rows(raw).Where(r => r.GetProperty("name").GetString() == node.Name).ToList();
        Assert.Equal(2, rows.Count);
        var stale = Assert.Single(rows, r => r.GetProperty("state").GetString() == "OFFLINE");
        var live = Assert.Single(rows, r => r.GetProperty("state").GetString() == "ACTIVE");
        Assert.Equal("127.0.0.1", stale.GetProperty("ipAddress").GetString());
        Assert.Equal(before.GetProperty("id").GetString(), stale.GetProperty("id").GetString());
        Assert.Equal(stableIds, live.GetProperty("id").GetString() == stale.GetProperty("id").GetString());
        // OFFLINE rows are left out of the state computation: the cluster is still READY_TO_UPGRADE.
        Assert.Equal("READY_TO_UPGRADE", raw.GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_graceful_stop_shows_DRAINING_while_a_clone_is_in_flight_then_the_node_leaves()
    {
        await using var c = await SimCluster.StartAsync(2, extraProperties: "graceful.shutdown.timeout=10s");
        await SetFaultsAsync(c, "node-2", """{"drainOnStop": true}""", "true");
        var node = c.Nodes[1];
        using var http = SimCluster.Http(admin: false);
        var clone = http.GetStringAsync(new Uri(node.Url, "scm/project/repo.git/info/refs?service=git-upload-pack&durationMs=4000"));
        await Eventually.UntilAsync(async () => (await http.GetStringAsync(new Uri(node.Url, "bbsim/node"))).Contains("\"inFlight\":1", StringComparison.Ordinal),
            SimCluster.Wait, "the clone in flight");

        var stop = c.StopNodeAsync(node);
        await c.WaitForAsync(x => x.Nodes.Any(n => n.Name == node.Name && n.State == NodeState.DRAINING), "node-2 DRAINING");
        Assert.EndsWith("done node-2\n", await clone);
        Assert.Equal(0, (await stop).ExitCode);
        await c.WaitForAsync(x => x.Nodes.All(n => n.Name != node.Name), "node-2 gone");
    }

    [Theory]
    [InlineData("FIRST_RUN")]
    [InlineData("MAINTENANCE")]
    public async Task Status_can_say_FIRST_RUN_or_MAINTENANCE_with_200(string state)
    {
        await using var c = await SimCluster.StartAsync(1);
        await SetFaultsAsync(c, "node-1", $$"""{"statusState": "{{state}}"}""", state);
        using var http = SimCluster.Http(admin: false);
        // The node applies the file at its next heartbeat.
        await Eventually.UntilAsync(async () =>
        {
            using var r = await http.GetAsync(new Uri(c.Nodes[0].Url, "status"));
            return r.StatusCode == HttpStatusCode.OK && await r.Content.ReadAsStringAsync() == $$"""{"state":"{{state}}"}""";
        }, SimCluster.Wait, $"/status 200 {state}");
        // The module's probe does not take it for RUNNING.
        using var probe = new NodeStatusProbe(c.Nodes[0].Url);
        var status = await probe.ReadAsync(CancellationToken.None);
        Assert.False(status.IsRunning, status.ToString());
        Assert.Equal(state, status.State);
    }

    [Fact]
    public async Task A_node_slow_to_report_has_a_null_state_and_version()
    {
        await using var c = await SimCluster.StartAsync(2);
        await SetFaultsAsync(c, "node-2", """{"nullState": true}""", "true");
        var raw = await Eventually.ValueAsync(() => RawClusterAsync(c),
            x => Rows(x).Any(r => r.GetProperty("state").ValueKind == JsonValueKind.Null), SimCluster.Wait, "a row with state null");
        var row = Rows(raw).Single(r => r.GetProperty("name").GetString() == "node-2");
        Assert.Equal(JsonValueKind.Null, row.GetProperty("state").ValueKind);
        Assert.Equal(JsonValueKind.Null, row.GetProperty("version").ValueKind);
        using var client = c.Client();
        var cluster = await client.GetClusterAsync();
        Assert.Equal(NodeState.Unknown, cluster.Nodes.Single(n => n.Name == "node-2").State);
    }

    /// <summary>A 1-node cluster upgraded to 8.19.4, READY_TO_RUN_UPGRADE_TASKS, with <paramref name="faults"/> set.</summary>
    private static async Task<SimCluster> ReadyToFinalizeAsync(string faults, string visible)
    {
        var c = await SimCluster.StartAsync(1);
        try
        {
            var node = c.Nodes[0];
            using var client = c.Client();
            await client.StartAsync();
            Assert.Equal(0, (await c.StopNodeAsync(node)).ExitCode);
            await c.StartNodeAsync(node, await c.InstallAsync(node, "8.19.4"));
            await c.WaitForAsync(x => x.State == ClusterState.READY_TO_RUN_UPGRADE_TASKS, "the node on 8.19.4");
            await SetFaultsAsync(c, "cluster", faults, visible);
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task Finalization_tasks_run_for_a_while_then_the_cluster_is_STABLE()
    {
        await using var c = await ReadyToFinalizeAsync("""{"upgradeTasksDurationMs": 2000}""", "2000");
        using var client = c.Client();
        var approved = await client.ApproveAsync();
        Assert.Equal(ClusterState.RUNNING_UPGRADE_TASKS, approved.State);
        Assert.True(approved.HasFinalizationTasks == true);
        Assert.False(approved.UpgradeModeEnabled);
        Assert.Equal(NodeState.RUNNING_FINALIZE_UPGRADE_TASKS, Assert.Single(approved.Nodes).State);
        Assert.Empty(approved.AllowedActions);
        await ConformanceTests.AssertConflict(() => client.RetryUpgradeAsync());

        var stable = await c.WaitForAsync(x => x.State != ClusterState.RUNNING_UPGRADE_TASKS, "the tasks done");
        Assert.Equal(ClusterState.STABLE, stable.State);
        Assert.Equal(NodeState.ACTIVE, Assert.Single(stable.Nodes).State);
    }

    [Fact]
    public async Task Failed_finalization_tasks_show_after_running_and_the_retry_runs_them_again()
    {
        await using var c = await ReadyToFinalizeAsync("""{"upgradeTasksFail": true, "upgradeTasksDurationMs": 1500}""", "1500");
        using var client = c.Client();
        Assert.Equal(ClusterState.RUNNING_UPGRADE_TASKS, (await client.ApproveAsync()).State);
        var failed = await c.WaitForAsync(x => x.State != ClusterState.RUNNING_UPGRADE_TASKS, "the tasks done");
        Assert.Equal(ClusterState.UPGRADE_TASKS_FAILED, failed.State);
        Assert.True(failed.HasFinalizationTasks == true);
        Assert.Equal(new[] { "retryUpgrade" }, failed.AllowedActions);

        var retried = await client.RetryUpgradeAsync();
        Assert.Equal(ClusterState.RUNNING_UPGRADE_TASKS, retried.State);
        Assert.Equal(ClusterState.STABLE, (await c.WaitForAsync(x => x.State != ClusterState.RUNNING_UPGRADE_TASKS, "the retried tasks done")).State);
    }

    [Fact]
    public async Task Approve_can_answer_500_after_taking_effect_and_the_client_re_reads()
    {
        await using var c = await ReadyToFinalizeAsync("""{"approveFailsAfterEffect": true}""", "true");
        using (var http = SimCluster.Http())
        using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri(c.Nodes[0].Url, "rest/zdu/approve")) { Content = new StringContent("", Encoding.UTF8, "application/json") })
        {
            using var r = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.InternalServerError, r.StatusCode);
            Assert.Contains("\"errors\"", await r.Content.ReadAsStringAsync());
        }
        using var client = c.Client();
        var cluster = await client.GetClusterAsync();
        Assert.Equal(ClusterState.STABLE, cluster.State);
        Assert.False(cluster.UpgradeModeEnabled);
        Assert.Equal("8.19.4", Assert.Single(cluster.Nodes).Version);
    }

    [Fact]
    public async Task The_module_client_takes_approve_500_for_done_when_the_cluster_shows_it()
    {
        await using var c = await ReadyToFinalizeAsync("""{"approveFailsAfterEffect": true}""", "true");
        using var client = c.Client();
        var cluster = await client.ApproveAsync();
        Assert.Equal(ClusterState.STABLE, cluster.State);
        Assert.Contains("approveFailsAfterEffect", c.Nodes[0].Log);
    }
}
