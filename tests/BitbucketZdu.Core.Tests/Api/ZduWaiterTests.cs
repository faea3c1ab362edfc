using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;

namespace BitbucketZdu.Core.Tests.Api;

public class ZduWaiterTests
{
    /// <summary>Answers GET /cluster from a script of payloads (the last one repeats) or failures.</summary>
    private sealed class ScriptedClient : IZduClient
    {
        private readonly Queue<Func<ZduCluster>> _script;
        private Func<ZduCluster> _last;
        public int Reads;

        public ScriptedClient(params Func<ZduCluster>[] script)
        {
            _script = new Queue<Func<ZduCluster>>(script);
            _last = script[^1];
        }

        public Uri BaseUri => new("https://bb.example.com/");
        public Task<ZduCluster> GetClusterAsync(CancellationToken cancellationToken = default)
        {
            Reads++;
            if (_script.Count > 0) _last = _script.Dequeue();
            return Task.FromResult(_last());
        }
        public Task<ZduStateResponse> GetStateAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<ZduCluster> StartAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<ZduCluster> CancelAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<ZduCluster> ApproveAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<ZduCluster> RetryUpgradeAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public void Dispose() { }
    }

    private sealed class RecordingHost : IOperationHost
    {
        public readonly List<OperationProgress> Progress = new();
        public void Verbose(string message) { }
        public void Debug(string message) { }
        public void Warning(string message) { }
        void IOperationHost.Progress(OperationProgress progress) { lock (Progress) Progress.Add(progress); }
        public bool ShouldProcess(string target, string action) => true;
    }

    private static readonly ZduPollOptions Fast = new() { InitialInterval = TimeSpan.FromMilliseconds(5), MaxInterval = TimeSpan.FromMilliseconds(20) };

    private static Func<ZduCluster> C(string json) => () => ZduJson.ParseCluster(json);

    private static Func<ZduCluster> Node(string id, string state, string? version = "8.19.4") =>
        C($$"""{"upgradeModeEnabled":true,"state":"MIXED","nodes":[{"id":"{{id}}","name":"node-1","ipAddress":"10.0.0.1","portNumber":5701,"state":"{{state}}","version":{{(version is null ? "null" : "\"" + version + "\"")}}}]}""");

    [Fact]
    public async Task The_cluster_wait_ends_at_the_wanted_state_and_reports_progress()
    {
        var client = new ScriptedClient(C(ZduTestData.ReadyToUpgrade), C(ZduTestData.Mixed), C(ZduTestData.ReadyToFinalize));
        var host = new RecordingHost();

        var cluster = await ZduWaiter.WaitForClusterStateAsync(client, new[] { ClusterState.READY_TO_RUN_UPGRADE_TASKS }, TimeSpan.FromSeconds(5), host, Fast);

        Assert.Equal(ClusterState.READY_TO_RUN_UPGRADE_TASKS, cluster.State);
        Assert.Equal(3, client.Reads);
        Assert.Contains(host.Progress, p => !p.Completed && p.Status.Contains("MIXED"));
        Assert.True(host.Progress.Last().Completed);
    }

    [Fact]
    public async Task A_cluster_timeout_names_the_last_state_seen()
    {
        var client = new ScriptedClient(C(ZduTestData.Mixed));

        var ex = await Assert.ThrowsAsync<BbException>(() =>
            ZduWaiter.WaitForClusterStateAsync(client, new[] { ClusterState.STABLE }, TimeSpan.FromMilliseconds(200), NullOperationHost.Instance, Fast));

        Assert.Equal("ZduWaitTimeout", ex.ErrorId);
        Assert.Equal(BbErrorCategory.OperationTimeout, ex.Category);
        Assert.Contains("MIXED", ex.Message);
        Assert.Contains("ERROR: node-3", ex.Message);
    }

    [Fact]
    public async Task A_node_is_followed_by_address_when_its_id_changes_on_restart()
    {
        var client = new ScriptedClient(Node("old-id", "TERMINATING"), Node("old-id", "OFFLINE", null), Node("new-id", "STARTING"), Node("new-id", "ACTIVE"));
        var reached = new List<ZduNode?>();

        var results = await ZduWaiter.WaitForNodeStatesAsync(client,
            new[] { new ZduNodeSelector { Id = "old-id", Name = "node-1", IpAddress = "10.0.0.1", PortNumber = 5701 } },
            new[] { NodeState.ACTIVE }, TimeSpan.FromSeconds(5), NullOperationHost.Instance, r => reached.Add(r.Node), Fast);

        var result = Assert.Single(results);
        Assert.True(result.Reached);
        Assert.Equal("new-id", result.Node!.Id);
        Assert.Equal("new-id", Assert.Single(reached)!.Id);
        Assert.Equal(4, client.Reads);
    }

    [Fact]
    public async Task Transient_read_failures_do_not_end_the_wait()
    {
        var client = new ScriptedClient(
            () => throw new ZduApiException(ZduErrorKind.ServerError, "503 from the proxy", statusCode: 503),
            Node("a", "ACTIVE"));

        var results = await ZduWaiter.WaitForNodeStatesAsync(client, new[] { new ZduNodeSelector { Name = "node-1" } },
            new[] { NodeState.ACTIVE }, TimeSpan.FromSeconds(5), NullOperationHost.Instance, null, Fast);

        Assert.True(results[0].Reached);
    }

    [Fact]
    public async Task An_auth_failure_ends_the_wait_at_once()
    {
        var client = new ScriptedClient(() => throw new ZduApiException(ZduErrorKind.Unauthorized, "401", statusCode: 401));

        await Assert.ThrowsAsync<ZduApiException>(() => ZduWaiter.WaitForNodeStatesAsync(client, new[] { new ZduNodeSelector { Name = "node-1" } },
            new[] { NodeState.ACTIVE }, TimeSpan.FromSeconds(5), NullOperationHost.Instance, null, Fast));
        Assert.Equal(1, client.Reads);
    }

    [Fact]
    public async Task A_node_timeout_reports_the_last_state_and_an_absent_node_counts_as_offline()
    {
        var client = new ScriptedClient(Node("a", "DRAINING"));

        var results = await ZduWaiter.WaitForNodeStatesAsync(client,
            new[] { new ZduNodeSelector { Name = "node-1" }, new ZduNodeSelector { Name = "node-9" } },
            new[] { NodeState.OFFLINE }, TimeSpan.FromMilliseconds(200), NullOperationHost.Instance, null, Fast);

        Assert.False(results[0].Reached);
        Assert.True(results[1].Reached);
        var error = ZduWaiter.TimeoutError(results[0], new[] { NodeState.OFFLINE }, TimeSpan.FromMilliseconds(200));
        Assert.Equal("ZduWaitTimeout", error.ErrorId);
        Assert.Contains("DRAINING on 8.19.4", error.Message);
    }

    [Fact]
    public async Task The_wait_runs_on_the_engine_clock_backs_off_by_its_factor_and_restarts_the_backoff_on_a_change()
    {
        var time = new BitbucketZdu.Core.Tests.Upgrade.Fakes.VirtualClock();
        var reads = new List<double>();
        var client = new ScriptedClient(() =>
        {
            reads.Add(Math.Round(time.Now.TotalSeconds, 3));
            return ZduJson.ParseCluster(time.Now < TimeSpan.FromSeconds(4) ? ZduTestData.ReadyToUpgrade : ZduTestData.Mixed);
        });
        var poll = new ZduPollOptions { InitialInterval = TimeSpan.FromSeconds(1), MaxInterval = TimeSpan.FromSeconds(10), Factor = 2, Poller = time.ToPoller() };

        var ex = await Assert.ThrowsAsync<BbException>(() =>
            ZduWaiter.WaitForClusterStateAsync(client, new[] { ClusterState.STABLE }, TimeSpan.FromSeconds(20), NullOperationHost.Instance, poll));

        // 0, 1, 3 (READY_TO_UPGRADE), 7 (MIXED: back to 1 s), 8, 10, 14, 20 (the deadline, exactly).
        Assert.Equal(new[] { 0, 1, 3, 7, 8, 10, 14, 20.0 }, reads);
        Assert.Equal("ZduWaitTimeout", ex.ErrorId);
        Assert.Contains("did not become STABLE within 20 s", ex.Message);
    }
}
