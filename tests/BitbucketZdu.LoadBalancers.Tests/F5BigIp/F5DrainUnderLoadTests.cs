using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.F5BigIp;

/// <summary>The drain-under-load proof the real load balancers pass, through the F5 stub and its data plane.</summary>
public sealed class F5DrainUnderLoadTests
{
    private readonly ITestOutputHelper _output;

    public F5DrainUnderLoadTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Session_disable_waits_for_current_connections_to_reach_zero_under_load_and_no_request_fails()
    {
        using var node1 = new Backend("node-1", TimeSpan.FromMilliseconds(15));
        using var node2 = new Backend("node-2", TimeSpan.FromMilliseconds(15));
        using var stub = new F5Stub();
        using var plane = new F5DataPlane(stub, node1, node2);
        var statsReads = 0;
        using var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.F5BigIp, new[] { stub.Url }, "bitbucket")
        {
            RequestTimeout = TimeSpan.FromSeconds(10), UserName = "f5ops", Password = Canary.Secure(Canary.Password),
        });

        var removed = await DrainUnderLoad.RunAsync("F5 BIG-IP (stub)", new LoadBalancerController(lb), node1.Address, node1, node2, plane.Frontend, _output);

        // The drain saw requests in flight (the 400 ms /slow ones) and waited for the stats to count 0, reading them
        // several times; it then forced the member offline.
        statsReads = stub.AllRequests.Count(r => r.StartsWith("GET /mgmt/tm/ltm/pool/~Common~bitbucket/members/~Common~" + node1.Address + "/stats", StringComparison.Ordinal));
        Assert.True(removed.ActiveAtDrainStart >= 1, $"no connection was in flight when the drain began ({removed.ActiveAtDrainStart})");
        Assert.True(statsReads >= 2, $"the drain read the member's stats {statsReads} time(s)");
        Assert.Contains(stub.Patches, p => p == node1.Address + " {\"session\":\"user-disabled\"}");
        Assert.Contains(stub.Patches, p => p == node1.Address + " {\"session\":\"user-disabled\",\"state\":\"user-down\"}");
        _output.WriteLine($"F5: {statsReads} stats reads while draining; connections at drain start {removed.ActiveAtDrainStart}, drain {removed.DrainDuration.TotalMilliseconds:0} ms");
    }
}
