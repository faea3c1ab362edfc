using System.Diagnostics;
using System.Net;
using System.Text.Json;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Simulator.Launcher;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>stop-bitbucket.sh: TERMINATING, in-flight requests finish within the grace period, then OFFLINE.</summary>
public sealed class GracefulStopTests
{
    [Fact]
    public async Task Stop_under_load_lets_every_request_in_flight_finish()
    {
        await using var c = await SimCluster.StartAsync(2);
        using var client = c.Client();
        await client.StartAsync();
        var node = c.Nodes[1];
        var pid = node.Pid!.Value;

        using var http = SimCluster.Http(admin: false);
        var requests = Enumerable.Range(0, 8).Select(i => http.GetAsync(new Uri(node.Url, $"?delayMs=1500&user=user{i}"))).ToList();
        await Eventually.UntilAsync(async () => await InFlightAsync(http, node) == 8, SimCluster.Wait, "8 requests in flight on node-2");
        var busy = await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).TasksTotal == 8, "tasksTotal 8 reported for node-2");
        Assert.Equal(8, busy.Nodes.Single(n => n.Name == node.Name).ActiveUserCount);

        var stop = c.StopNodeAsync(node);
        await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.TERMINATING, "node-2 TERMINATING while requests finish");

        foreach (var r in requests)
        {
            using var response = await r;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("node-2", doc.RootElement.GetProperty("node").GetString());
        }
        var (code, output) = await stop;
        Assert.True(code == 0, output);
        Assert.Contains("Stopped Bitbucket", output);
        Assert.False(ProcessControl.IsAlive(pid));
        Assert.False(File.Exists(Path.Combine(node.Home, "bitbucket.pid")));
        await c.WaitForAsync(x => x.Nodes.Single(n => n.Name == node.Name).State == NodeState.OFFLINE, "node-2 OFFLINE after its stop");
    }

    [Fact]
    public async Task The_grace_period_bounds_the_stop()
    {
        await using var c = await SimCluster.StartAsync(1, extraProperties: "graceful.shutdown.timeout=1s");
        var node = c.Nodes[0];
        using var http = SimCluster.Http(admin: false);
        var slow = http.GetAsync(new Uri(node.Url, "?delayMs=20000"));
        await Eventually.UntilAsync(async () => await InFlightAsync(http, node) == 1, SimCluster.Wait, "the slow request in flight");

        var sw = Stopwatch.StartNew();
        var (code, output) = await c.StopNodeAsync(node);
        Assert.True(code == 0, output);
        Assert.InRange(sw.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => slow);   // cut off after the grace period
        Assert.Contains("in-flight requests have 1 s to finish (1 in flight)", node.Log);
    }

    private static async Task<int> InFlightAsync(HttpClient http, SimNode node)
    {
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Url, "bbsim/node")));
        return doc.RootElement.GetProperty("inFlight").GetInt32();
    }
}
