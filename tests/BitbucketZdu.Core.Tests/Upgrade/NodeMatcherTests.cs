using System.Collections;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>Issue 12 problems 3 and 4: matching profile nodes to the plugin's JSON (no portNumber, "Not configured", stale OFFLINE rows).</summary>
public sealed class NodeMatcherTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-match-").FullName;

    private ClusterProfile Profile(string? apiAddress, string url = "http://node1.example:7990/bitbucket")
    {
        var archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.tar.gz");
        File.WriteAllText(archive, "x");
        var node1 = new Hashtable { ["Name"] = "node-1", ["Url"] = url, ["Remoting"] = "local", ["InstallRoot"] = "/opt/atlassian/bitbucket", ["Service"] = "Script", ["Member"] = "bitbucket/node-1" };
        if (apiAddress is not null) node1["ApiAddress"] = apiAddress;
        return ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = PreflightCheck.Sha256Of(archive) },
            ["LoadBalancers"] = new object[] { new Hashtable { ["Name"] = "lb", ["Kind"] = "HAProxy", ["Settings"] = new Hashtable { ["AdminSocket"] = "127.0.0.1:9999" } } },
            ["Nodes"] = new object[]
            {
                node1,
                new Hashtable { ["Name"] = "node-2", ["Url"] = "http://10.0.0.9:7990/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/atlassian/bitbucket", ["Service"] = "Script", ["Member"] = "bitbucket/node-2" },
            },
        }, null);
    }

    private static ZduCluster Cluster(string nodes) => ZduJson.ParseClusterStrict(
        $$"""{"upgradeModeEnabled":true,"state":"MIXED","originalVersion":"8.19.3","nodes":[{{nodes}}],"links":[{"rel":"self","href":"/"}]}""");

    [Fact]
    public void An_ApiAddress_with_a_port_matches_the_plugins_rows_which_have_no_portNumber()
    {
        var cluster = Cluster("""{"id":"a1","name":"Not configured","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"}""");
        Assert.Equal("a1", NodeMatcher.Find(cluster.Nodes, Profile("10.0.0.1:5701").Nodes[0])?.Id);
    }

    [Fact]
    public void A_node_back_on_a_new_address_with_its_id_is_found_not_its_stale_OFFLINE_row()
    {
        // The profile's ApiAddress is the old address: only the stale OFFLINE row has it; the live row kept the id.
        var cluster = Cluster("""
            {"id":"b1","name":"Not configured","ipAddress":"10.0.0.1","state":"OFFLINE","version":null},
            {"id":"b1","name":"Not configured","ipAddress":"10.0.0.7","state":"ACTIVE","version":"8.19.4"},
            {"id":"c1","name":"Not configured","ipAddress":"10.0.0.9","state":"ACTIVE","version":"8.19.3"}
            """);

        var found = NodeMatcher.Find(cluster.Nodes, Profile("10.0.0.1").Nodes[0]);

        Assert.NotNull(found);
        Assert.Equal(NodeState.ACTIVE, found!.State);
        Assert.Equal("10.0.0.7", found.IpAddress);
    }

    [Fact]
    public void On_one_address_the_live_row_wins_over_a_stale_OFFLINE_row_with_another_id()
    {
        var cluster = Cluster("""
            {"id":"old","name":"Not configured","ipAddress":"10.0.0.1","state":"OFFLINE","version":null},
            {"id":"new","name":"Not configured","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"}
            """);
        Assert.Equal("new", NodeMatcher.Find(cluster.Nodes, Profile("10.0.0.1").Nodes[0])?.Id);
    }

    [Fact]
    public void Names_Not_configured_match_by_the_host_of_the_nodes_Url_when_no_ApiAddress_is_given()
    {
        var cluster = Cluster("""
            {"id":"a1","name":"Not configured","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"},
            {"id":"c1","name":"Not configured","ipAddress":"10.0.0.9","state":"ACTIVE","version":"8.19.3"}
            """);
        var profile = Profile(null, "http://10.0.0.1:7990/bitbucket");

        Assert.Equal("a1", NodeMatcher.Find(cluster.Nodes, profile.Nodes[0])?.Id);
        Assert.Equal("c1", NodeMatcher.Find(cluster.Nodes, profile.Nodes[1])?.Id);
        Assert.Empty(NodeMatcher.Unmatched(cluster.Nodes, profile.Nodes));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
