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
    public async Task Session_disable_under_load_forces_offline_only_at_zero_current_connections_and_no_request_fails()
    {
        using var node1 = new Backend("node-1", TimeSpan.FromMilliseconds(15));
        using var node2 = new Backend("node-2", TimeSpan.FromMilliseconds(15));
        using var stub = new F5Stub();
        using var plane = F5DataPlane.Start(stub, node1.Address, node2.Address);
        using var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.F5BigIp, new[] { stub.Url }, "bitbucket")
        {
            RequestTimeout = TimeSpan.FromSeconds(10), UserName = "f5ops", Password = Canary.Secure(Canary.Password),
        });

        var removed = await DrainUnderLoad.RunAsync("F5 BIG-IP (stub)", new LoadBalancerController(lb), node1.Address, node1, node2, plane.Frontend, _output);

        // Forced offline only once the member's current connections (requests in flight through the data plane) were 0.
        // Whether a request happens to be in flight at the moment of the disable is up to timing; the deterministic
        // wait for connections is F5BigIpTests' first test.
        var down = stub.Patches.IndexOf(node1.Address + " {\"session\":\"user-disabled\",\"state\":\"user-down\"}");
        Assert.True(down > 0, "no forced offline: " + string.Join(" | ", stub.Patches));
        Assert.Equal(node1.Address + " {\"session\":\"user-disabled\"}", stub.Patches[down - 1]);
        Assert.Equal(0, stub.ConnectionsAtPatch[down]);
        var statsReads = stub.AllRequests.Count(r => r.StartsWith("GET /mgmt/tm/ltm/pool/~Common~bitbucket/members/~Common~" + node1.Address + "/stats", StringComparison.Ordinal));
        _output.WriteLine($"F5: {statsReads} stats read(s) while draining; connections at drain start {removed.ActiveAtDrainStart}, at the forced offline 0; drain {removed.DrainDuration.TotalMilliseconds:0} ms");
    }
}
