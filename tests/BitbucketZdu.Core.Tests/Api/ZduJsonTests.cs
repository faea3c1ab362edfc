using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Core.Tests.Api;

public class ZduJsonTests
{
    private const string ClusterJson = """
        {"upgradeModeEnabled": true, "hasFinalizationTasks": false, "state": "READY_TO_UPGRADE",
         "originalVersion": "8.19.3", "somethingNew": {"x": 1},
         "nodes": [ { "id": "7a52c813", "name": "node-1", "ipAddress": "10.0.0.1", "portNumber": 5701,
           "state": "ACTIVE", "tasksTotal": 5, "activeUserCount": 12, "buildNumber": "1234",
           "version": "8.19.3", "local": true, "finalization": null,
           "links": [ {"rel": "self", "href": "/nodes/7a52c813"} ] },
           { "id": "b", "name": "node-2", "ipAddress": "10.0.0.2", "state": "HIBERNATING", "version": null } ],
         "links": [ {"rel": "self", "href": "/"}, {"rel": "cancel", "href": "/cancel"} ] }
        """;

    [Fact]
    public void Parses_the_documented_cluster_shape()
    {
        var c = ZduJson.ParseCluster(ClusterJson);
        Assert.True(c.UpgradeModeEnabled);
        Assert.Equal(ClusterState.READY_TO_UPGRADE, c.State);
        Assert.Equal("8.19.3", c.OriginalVersion);
        Assert.Equal(2, c.Nodes.Count);
        var n = c.Nodes[0];
        Assert.Equal(("7a52c813", "node-1", "10.0.0.1", 5701), (n.Id, n.Name, n.IpAddress, n.PortNumber!.Value));
        Assert.Equal(NodeState.ACTIVE, n.State);
        Assert.Equal((5, 12), (n.TasksTotal!.Value, n.ActiveUserCount!.Value));
        Assert.True(n.Local);
        Assert.True(c.Allows(ZduLinkRelations.Cancel));
        Assert.False(c.Allows(ZduLinkRelations.Approve));
        Assert.Equal(new[] { "cancel" }, c.AllowedActions);
    }

    [Fact]
    public void Unknown_enum_values_and_missing_counts_do_not_break_parsing()
    {
        var n = ZduJson.ParseCluster(ClusterJson).Nodes[1];
        Assert.Equal(NodeState.Unknown, n.State);
        Assert.Equal("HIBERNATING", n.StateText);
        Assert.Null(n.TasksTotal);
        Assert.Null(n.ActiveUserCount);
        Assert.Null(n.PortNumber);
        Assert.Null(n.Version);
    }

    [Fact]
    public void State_response_carries_the_answering_node()
    {
        var s = ZduJson.ParseState("""{"state":"MIXED","buildInfo":{"id":"x","name":"node-3","state":"ACTIVE","version":"8.19.4"}}""");
        Assert.Equal(ClusterState.MIXED, s.State);
        Assert.Equal("node-3", s.BuildInfo!.Name);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"text\"")]
    public void A_non_object_is_a_format_error(string json)
    {
        Assert.Throws<FormatException>(() => ZduJson.ParseCluster(json));
    }

    // Issue 12 problem 3: the plugin's JSON (no portNumber) with a stale OFFLINE row that shares the live row's id.
    private const string StaleDuplicate = """{"upgradeModeEnabled":true,"state":"MIXED","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"Not configured","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"},{"id":"b1","name":"Not configured","ipAddress":"10.0.0.2","state":"OFFLINE","version":null},{"id":"b1","name":"Not configured","ipAddress":"10.0.0.7","state":"ACTIVE","version":"8.19.4"}],"links":[{"rel":"self","href":"/"}]}""";

    [Fact]
    public void A_stale_OFFLINE_row_sharing_an_id_is_dropped_with_a_warning_and_the_live_row_wins()
    {
        var cluster = ZduJson.ParseClusterStrict(StaleDuplicate);

        var b1 = Assert.Single(cluster.Nodes, n => n.Id == "b1");
        Assert.Equal(NodeState.ACTIVE, b1.State);
        Assert.Equal("10.0.0.7", b1.IpAddress);
        Assert.Equal(2, cluster.Nodes.Count);
        var warning = Assert.Single(cluster.Warnings);
        Assert.Contains("'b1'", warning);
        Assert.Contains("10.0.0.2", warning);
    }

    [Fact]
    public void Two_live_rows_with_one_id_are_still_refused()
    {
        var json = StaleDuplicate.Replace("\"OFFLINE\",\"version\":null", "\"ACTIVE\",\"version\":\"8.19.3\"");
        Assert.Contains("appears 2 times", Assert.Throws<FormatException>(() => ZduJson.ParseClusterStrict(json)).Message);
    }
}
