using System.Collections;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>
/// Atlassian's AWS shape: an ALB target group for HTTP (7990) and an NLB target group for SSH (7999), every node a
/// target of both. A profile names one AwsElb entry per group; a node goes out of both and comes back into both.
/// </summary>
public sealed class AwsElbProfileTests : IDisposable
{
    private readonly ElbStub _http = new(Canary.Password, "10.0.0.11:7990", "10.0.0.12:7990");
    private readonly ElbStub _ssh = new(Canary.Password, "10.0.0.11:7999", "10.0.0.12:7999");

    public void Dispose()
    {
        _http.Dispose();
        _ssh.Dispose();
    }

    private static Hashtable Entry(string name, ElbStub stub) => new()
    {
        ["Name"] = name, ["Kind"] = "AwsElb",
        ["Settings"] = new Hashtable { ["Endpoint"] = ElbStub.Region, ["Backend"] = stub.TargetGroupArn, ["EndpointUrl"] = stub.Url, ["CliPath"] = AwsCli.Isolated, ["TimeoutSec"] = 30 },
    };

    [Fact]
    public async Task A_node_in_the_http_and_the_ssh_target_group_goes_out_of_both_and_back_into_both()
    {
        var profile = ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod", ["BaseUrl"] = "https://bitbucket.example.com", ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Url"] = "https://example.com/bb.tar.gz", ["Sha256"] = new string('a', 64) },
            ["LoadBalancers"] = new object[] { Entry("alb-http", _http), Entry("nlb-ssh", _ssh) },
            ["Nodes"] = new object[]
            {
                new Hashtable { ["Name"] = "node-1", ["Url"] = "http://127.0.0.1:7990/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/bb",
                    ["Members"] = new Hashtable { ["alb-http"] = "10.0.0.11:7990", ["nlb-ssh"] = "10.0.0.11:7999" } },
                new Hashtable { ["Name"] = "node-2", ["Url"] = "http://127.0.0.1:7991/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/bb",
                    ["Members"] = new Hashtable { ["alb-http"] = "10.0.0.12:7990", ["nlb-ssh"] = "10.0.0.12:7999" } },
            },
            ["Timeouts"] = new Hashtable { ["DrainSeconds"] = 60, ["HealthySeconds"] = 60, ["FirstPollMilliseconds"] = 20, ["MaxPollMilliseconds"] = 200 },
        });
        var keys = new Dictionary<string, LoadBalancerCredential>(StringComparer.OrdinalIgnoreCase)
        {
            ["alb-http"] = new(ElbStub.AccessKeyId, Canary.Secure(Canary.Password)),
            ["nlb-ssh"] = new(ElbStub.AccessKeyId, Canary.Secure(Canary.Password)),
        };
        using var rotation = new LoadBalancerRotation(profile, credentials: keys);
        var node = profile.Nodes[0];
        Assert.True((await rotation.ProbeAsync(node, CancellationToken.None)).MemberFound);

        await rotation.TakeOutAsync(node, TimeSpan.FromSeconds(60), CancellationToken.None);
        Assert.Equal(("unused", "unused"), (_http.Get("10.0.0.11:7990")!.State, _ssh.Get("10.0.0.11:7999")!.State));
        Assert.Equal(("healthy", "healthy"), (_http.Get("10.0.0.12:7990")!.State, _ssh.Get("10.0.0.12:7999")!.State));
        // A resumed run (a new rotation) still finds the deregistered targets: asked for by name they read 'unused'.
        using (var resumed = new LoadBalancerRotation(profile, credentials: keys))
            Assert.Equal("OutOfRotation", (await resumed.GetStateAsync(node, CancellationToken.None)).ToString());

        await rotation.PutBackAsync(node, TimeSpan.FromSeconds(60), CancellationToken.None);
        Assert.Equal(("healthy", "healthy"), (_http.Get("10.0.0.11:7990")!.State, _ssh.Get("10.0.0.11:7999")!.State));
        Assert.Equal("InRotation", (await rotation.GetStateAsync(node, CancellationToken.None)).ToString());
        foreach (var change in rotation.Changes) Canary.AssertAbsent(change + " " + change.Note, "the change results");
    }
}
