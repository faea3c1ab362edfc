using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>The drain-under-load proof the real load balancers pass: the real AWS CLI v2 against the ELB stub, and a data plane that routes to its healthy targets.</summary>
public sealed class ElbDrainUnderLoadTests
{
    private readonly ITestOutputHelper _output;

    public ElbDrainUnderLoadTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Deregistration_drains_for_the_delay_under_load_and_no_request_fails()
    {
        using var node1 = new Backend("node-1", TimeSpan.FromMilliseconds(15));
        using var node2 = new Backend("node-2", TimeSpan.FromMilliseconds(15));
        // The delay outlasts the 400 ms requests in flight at deregistration, as the group's delay should.
        using var stub = new ElbStub(Canary.Password, node1.Address, node2.Address) { DeregistrationDelay = TimeSpan.FromSeconds(1.5) };
        using var plane = stub.StartDataPlane();
        var d = new LoadBalancerDescription(LoadBalancerKind.AwsElb, new[] { ElbStub.Region }, stub.TargetGroupArn)
        {
            RequestTimeout = TimeSpan.FromSeconds(30), UserName = ElbStub.AccessKeyId, Password = Canary.Secure(Canary.Password),
        };
        d.Options["EndpointUrl"] = stub.Url;
        d.Options["CliPath"] = AwsCli.Isolated;
        using var lb = LoadBalancerFactory.Create(d);

        var removed = await DrainUnderLoad.RunAsync("AWS ELB (stub)", new LoadBalancerController(lb), node1.Address, node1, node2, plane.Frontend, _output);

        // The removal (from before the deregister call, in which the stub starts the delay) lasts at least the delay: the
        // provider waited for 'unused'. The drain part alone starts after the CLI process ended, later under load.
        Assert.True(removed.Duration >= TimeSpan.FromSeconds(1.5), $"the removal waited out the deregistration delay ({removed.Duration.TotalMilliseconds:0} ms)");
        Assert.Equal("healthy", stub.Get(node1.Address)!.State);
    }
}
