using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Rules;

public class ZduStateRulesTests
{
    [Theory]
    [InlineData(Stable, ZduAction.Start, true)]
    [InlineData(Stable, ZduAction.Cancel, false)]
    [InlineData(Stable, ZduAction.Approve, false)]
    [InlineData(ReadyToUpgrade, ZduAction.Cancel, true)]
    [InlineData(ReadyToUpgrade, ZduAction.Start, false)]
    [InlineData(ReadyToUpgrade, ZduAction.Approve, false)]
    [InlineData(Mixed, ZduAction.Cancel, false)]
    [InlineData(Mixed, ZduAction.Approve, false)]
    [InlineData(ReadyToFinalize, ZduAction.Approve, true)]
    [InlineData(ReadyToFinalize, ZduAction.Cancel, false)]
    [InlineData(ReadyToFinalize, ZduAction.RetryUpgrade, false)]
    public void The_guards_follow_the_server(string json, ZduAction action, bool allowed)
    {
        var verdict = ZduStateRules.Check(ZduJson.ParseCluster(json), action);
        Assert.Equal(allowed, verdict.Allowed);
        Assert.True(verdict.FromServerLinks);
        Assert.False(string.IsNullOrWhiteSpace(verdict.Reason));
    }

    [Fact]
    public void Without_links_the_documented_state_table_decides()
    {
        var cluster = ZduJson.ParseCluster("""{"upgradeModeEnabled":true,"state":"UPGRADE_TASKS_FAILED","nodes":[]}""");
        Assert.True(ZduStateRules.Check(cluster, ZduAction.RetryUpgrade).Allowed);
        Assert.False(ZduStateRules.Check(cluster, ZduAction.Start).FromServerLinks);
        Assert.False(ZduStateRules.Check(cluster, ZduAction.Start).Allowed);
        Assert.Equal("retryUpgrade", ZduStateRules.DescribeAllowed(cluster));
    }

    [Fact]
    public void The_servers_links_win_over_the_state_table()
    {
        var cluster = ZduJson.ParseCluster("""{"upgradeModeEnabled":true,"state":"MIXED","nodes":[],"links":[{"rel":"self"},{"rel":"approve"}]}""");
        var verdict = ZduStateRules.Check(cluster, ZduAction.Approve);
        Assert.True(verdict.Allowed);
        Assert.Contains("links decide", verdict.Reason);
    }

    [Fact]
    public void Refusing_to_finalize_in_MIXED_names_versions_and_ERROR_nodes()
    {
        var reason = ZduStateRules.Check(ZduJson.ParseCluster(Mixed), ZduAction.Approve).Reason;
        Assert.Contains("ERROR block finalizing: node-3", reason);
        Assert.Contains("on 8.19.3: node-2", reason);
        Assert.Contains("on 8.19.4: node-1", reason);
        Assert.Contains("Allowed now: none", reason);
    }

    [Fact]
    public void Refusing_to_cancel_after_every_node_is_upgraded_says_to_finalize()
    {
        var reason = ZduStateRules.Check(ZduJson.ParseCluster(ReadyToFinalize), ZduAction.Cancel).Reason;
        Assert.Contains("Complete-BbRollingUpgrade", reason);
        Assert.Contains("Allowed now: approve", reason);
    }

    [Fact]
    public void Offline_nodes_are_listed_apart()
    {
        var cluster = ZduJson.ParseCluster("""{"upgradeModeEnabled":true,"state":"READY_TO_RUN_UPGRADE_TASKS","nodes":[{"name":"n1","state":"ACTIVE","version":"8.19.4"},{"name":"n2","state":"OFFLINE"}],"links":[]}""");
        Assert.Equal("on 8.19.4: n1; OFFLINE: n2", ZduStateRules.DescribeNodes(cluster));
    }
}
