using System.Management.Automation;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Models;
using BitbucketZdu.TestSupport;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>Get-BbNode, the state-changing cmdlets and the waits, hosted in a real runspace against WireMock.</summary>
public sealed class ClusterActionCmdletTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly PowerShellHost _ps = new();
    private readonly BbConnection _connection;

    public ClusterActionCmdletTests()
    {
        var options = Options(_server.Url!);
        _connection = new BbConnection(new ZduClient(options), options);
    }

    /// <summary>Runs with every Bb cmdlet bound to this test's connection; fails if a canary secret shows on any stream.</summary>
    private PowerShellHost.Result Run(string script)
    {
        var r = _ps.Run("$PSDefaultParameterValues['*-Bb*:Connection'] = $conn\n" + script,
            new Dictionary<string, object?> { ["conn"] = _connection });
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
        return r;
    }

    private int Posts => _server.LogEntries.Count(e => e.RequestMessage!.Method == "POST");

    [Fact]
    public void Get_BbNode_lists_typed_nodes_and_filters_by_wildcard_name_and_state()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));

        var all = Run("Get-BbNode");
        var byName = Run("Get-BbNode -Name 'NODE-[12]'");
        var byState = Run("Get-BbNode -State ERROR");

        Assert.Null(all.FirstError);
        Assert.Equal(3, all.Output.Count);
        Assert.All(all.Output, o => Assert.IsType<ZduNode>(o.BaseObject));
        Assert.Equal(new[] { "node-1", "node-2" }, byName.Output.Select(o => ((ZduNode)o.BaseObject).Name));
        Assert.Equal("node-3", ((ZduNode)Assert.Single(byState.Output).BaseObject).Name);
    }

    /// <summary>Before: Export-Csv wrote System.Collections.Generic.List`1[...ZduLink] for Links.</summary>
    [Fact]
    public void Get_BbNode_exports_to_csv_without_collection_type_names()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));

        var r = Run("Get-BbNode | ConvertTo-Csv -NoTypeInformation | Out-String");

        Assert.Null(r.FirstError);
        Assert.DoesNotContain("System.Collections", r.Output.Single().ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Get_BbNode_by_id_reads_the_node_and_an_unknown_id_or_name_is_a_non_terminating_error()
    {
        _server.Answer("GET", "/rest/zdu/nodes/a1", Reply("""{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"}"""));
        _server.Answer("GET", "/rest/zdu/nodes/zz", Response.Create().WithStatusCode(404));
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));

        var byId = Run("Get-BbNode -Id a1, zz");
        var byName = Run("Get-BbNode -Name node-1, nope");

        Assert.Equal("node-1", ((ZduNode)Assert.Single(byId.Output).BaseObject).Name);
        Assert.Equal("ZduNotFound,BitbucketZdu.Cmdlets.GetBbNodeCommand", Assert.Single(byId.Errors).FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, byId.Errors[0].CategoryInfo.Category);
        Assert.Single(byName.Output);
        var error = Assert.Single(byName.Errors);
        Assert.Equal("GetBbNodeNotFound,BitbucketZdu.Cmdlets.GetBbNodeCommand", error.FullyQualifiedErrorId);
        Assert.Contains("node-1, node-2", error.Exception.Message);
    }

    [Theory]
    [InlineData("Enable-BbUpgradeMode", Stable, "/rest/zdu/start", ReadyToUpgrade)]
    [InlineData("Disable-BbUpgradeMode", ReadyToUpgrade, "/rest/zdu/cancel", Stable)]
    [InlineData("Complete-BbRollingUpgrade -Confirm:$false", ReadyToFinalize, "/rest/zdu/approve", Stable)]
    public void Each_action_posts_once_when_the_rules_allow_it_and_PassThru_returns_the_cluster(string command, string before, string path, string after)
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(before));
        _server.Answer("POST", path, Reply(after));

        var r = Run(command + " -PassThru -Verbose");

        Assert.Null(r.FirstError);
        var cluster = Assert.IsType<ZduCluster>(Assert.Single(r.Output).BaseObject);
        Assert.Equal(ZduJson.ParseCluster(after).State, cluster.State);
        Assert.Equal(1, _server.Count("POST", path));
        Assert.Equal(1, Posts);
        Assert.Contains(r.Verbose, v => v.Contains("done"));
    }

    [Theory]
    [InlineData("Enable-BbUpgradeMode", ReadyToUpgrade, "EnableBbUpgradeModeInvalidState", "already enabled")]
    [InlineData("Disable-BbUpgradeMode", Mixed, "DisableBbUpgradeModeInvalidState", "node-3")]
    [InlineData("Disable-BbUpgradeMode", ReadyToFinalize, "DisableBbUpgradeModeInvalidState", "Complete-BbRollingUpgrade")]
    [InlineData("Complete-BbRollingUpgrade -Confirm:$false", Mixed, "CompleteBbRollingUpgradeInvalidState", "ERROR block finalizing: node-3")]
    [InlineData("Complete-BbRollingUpgrade -Confirm:$false", ReadyToUpgrade, "CompleteBbRollingUpgradeInvalidState", "original version 8.19.3")]
    public void An_action_the_rules_refuse_is_an_error_that_says_why_and_nothing_is_sent(string command, string state, string errorId, string reason)
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(state));

        var r = Run(command);

        var error = r.FirstError!;
        Assert.Equal(errorId + "," + "BitbucketZdu.Cmdlets." + command.Split(' ')[0].Replace("-", "") + "Command", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
        Assert.Contains(reason, error.Exception.Message);
        Assert.Contains(_server.Url!, error.Exception.Message);
        // Before: TargetObject was the ZduCluster read (it printed as BitbucketZdu.Core.Api.ZduCluster); now the cluster's URL.
        Assert.StartsWith(_server.Url!, Assert.IsType<Uri>(error.TargetObject).ToString(), StringComparison.Ordinal);
        Assert.Contains("Get-BbClusterStatus", error.ErrorDetails?.RecommendedAction);
        Assert.Equal(0, Posts);
    }

    [Theory]
    [InlineData("Enable-BbUpgradeMode -WhatIf", Stable)]
    [InlineData("Disable-BbUpgradeMode -WhatIf", ReadyToUpgrade)]
    [InlineData("Complete-BbRollingUpgrade -WhatIf", ReadyToFinalize)]
    public void WhatIf_sends_nothing(string command, string state)
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(state));
        _server.Given(WireMock.RequestBuilders.Request.Create().UsingPost()).RespondWith(Reply(state));

        var r = Run(command + " -PassThru");

        Assert.Null(r.FirstError);
        Assert.Empty(r.Output);
        Assert.Equal(0, Posts);
    }

    // Issue 12 problem 5 and issue 17: finalization tasks, and an approve that would leave an OFFLINE node behind.
    private const string RunningTasks = """{"upgradeModeEnabled":false,"hasFinalizationTasks":true,"state":"RUNNING_UPGRADE_TASKS","originalVersion":null,"nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"RUNNING_FINALIZE_UPGRADE_TASKS","version":"8.19.4"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.4"}],"links":[{"rel":"self","href":"/"}]}""";
    private const string TasksFailed = """{"upgradeModeEnabled":false,"hasFinalizationTasks":true,"state":"UPGRADE_TASKS_FAILED","originalVersion":null,"nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"UPGRADE_TASKS_FAILED","version":"8.19.4"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.4"}],"links":[{"rel":"self","href":"/"},{"rel":"retryUpgrade","href":"/retryUpgrade"}]}""";
    private const string ReadyWithOffline = """{"upgradeModeEnabled":true,"state":"READY_TO_RUN_UPGRADE_TASKS","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.4"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.4"},{"id":"c3","name":"node-3","ipAddress":"10.0.0.3","state":"OFFLINE","version":null}],"links":[{"rel":"self","href":"/"},{"rel":"approve","href":"/approve"}]}""";

    [Fact]
    public void Complete_BbRollingUpgrade_waits_through_the_finalization_tasks_until_STABLE()
    {
        _server.AnswerSteps("GET", "/rest/zdu/cluster", (Reply(ReadyToFinalize), 1), (Reply(RunningTasks), 2), (Reply(Stable), 1000));
        _server.Answer("POST", "/rest/zdu/approve", Reply(RunningTasks));

        var r = Run("Complete-BbRollingUpgrade -Confirm:$false -PassThru -TimeoutSec 60");

        Assert.Null(r.FirstError);
        Assert.Equal(ClusterState.STABLE, Assert.IsType<ZduCluster>(Assert.Single(r.Output).BaseObject).State);
        Assert.Equal(1, Posts);
    }

    [Fact]
    public void Complete_BbRollingUpgrade_reports_failed_finalization_tasks_as_an_error_with_the_next_step()
    {
        _server.AnswerSteps("GET", "/rest/zdu/cluster", (Reply(ReadyToFinalize), 1), (Reply(RunningTasks), 1), (Reply(TasksFailed), 1000));
        _server.Answer("POST", "/rest/zdu/approve", Reply(RunningTasks));

        var r = Run("Complete-BbRollingUpgrade -Confirm:$false -TimeoutSec 60");

        var error = r.FirstError!;
        Assert.Equal("CompleteBbRollingUpgradeTasksFailed,BitbucketZdu.Cmdlets.CompleteBbRollingUpgradeCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidResult, error.CategoryInfo.Category);
        Assert.Contains("UPGRADE_TASKS_FAILED", error.Exception.Message);
        Assert.Contains("Resume-BbUpgradeTask", error.Exception.Message);
    }

    [Fact]
    public void Complete_BbRollingUpgrade_refuses_while_a_node_is_OFFLINE_unless_forced()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(ReadyWithOffline));
        _server.Answer("POST", "/rest/zdu/approve", Reply(Stable));

        var refused = Run("Complete-BbRollingUpgrade -Confirm:$false");

        var error = refused.FirstError!;
        Assert.Equal("CompleteBbRollingUpgradeNodeOffline,BitbucketZdu.Cmdlets.CompleteBbRollingUpgradeCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
        Assert.Contains("node-3", error.Exception.Message);
        Assert.Contains("8.19.3", error.Exception.Message);
        Assert.Contains("-Force", error.Exception.Message);
        Assert.Equal(0, Posts);

        var forced = Run("Complete-BbRollingUpgrade -Confirm:$false -Force");

        Assert.Null(forced.FirstError);
        Assert.Contains(forced.Warnings, w => w.Contains("node-3"));
        Assert.Equal(1, Posts);
    }

    [Fact]
    public void Resume_BbUpgradeTask_sends_retryUpgrade_once_in_UPGRADE_TASKS_FAILED_and_waits_for_STABLE()
    {
        _server.AnswerSteps("GET", "/rest/zdu/cluster", (Reply(TasksFailed), 1), (Reply(RunningTasks), 1), (Reply(Stable), 1000));
        _server.Answer("POST", "/rest/zdu/retryUpgrade", Reply(RunningTasks));

        var r = Run("Resume-BbUpgradeTask -Confirm:$false -PassThru -TimeoutSec 60");

        Assert.Null(r.FirstError);
        Assert.Equal(ClusterState.STABLE, Assert.IsType<ZduCluster>(Assert.Single(r.Output).BaseObject).State);
        Assert.Equal(1, _server.Count("POST", "/rest/zdu/retryUpgrade"));
    }

    [Fact]
    public void Resume_BbUpgradeTask_refuses_outside_UPGRADE_TASKS_FAILED_and_is_high_impact()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));

        var r = Run("Resume-BbUpgradeTask -Confirm:$false");
        var impact = Run("(Get-Command Resume-BbUpgradeTask).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false).ConfirmImpact");

        Assert.Equal("ResumeBbUpgradeTaskInvalidState,BitbucketZdu.Cmdlets.ResumeBbUpgradeTaskCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal(0, Posts);
        Assert.Equal("High", impact.Output.Single().ToString());
    }

    [Fact]
    public void Complete_BbRollingUpgrade_is_high_impact()
    {
        var r = Run("(Get-Command Complete-BbRollingUpgrade).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false).ConfirmImpact");
        Assert.Equal("High", r.Output.Single().ToString());
    }

    [Fact]
    public void Wait_BbClusterState_polls_until_the_state_is_reached()
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Reply(Mixed), 2, Reply(ReadyToFinalize));

        var r = Run("Wait-BbClusterState -State READY_TO_RUN_UPGRADE_TASKS, STABLE -TimeoutSec 10 -PollIntervalSec 0.02");

        Assert.Null(r.FirstError);
        Assert.Equal(ClusterState.READY_TO_RUN_UPGRADE_TASKS, ((ZduCluster)Assert.Single(r.Output).BaseObject).State);
        Assert.Equal(3, _server.Count("GET", "/rest/zdu/cluster"));
    }

    [Fact]
    public void A_wait_timeout_is_an_error_that_shows_the_last_state_seen()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));

        var r = Run("Wait-BbClusterState -State STABLE -TimeoutSec 2 -PollIntervalSec 0.05");

        var error = r.FirstError!;
        Assert.Equal("ZduWaitTimeout,BitbucketZdu.Cmdlets.WaitBbClusterStateCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.OperationTimeout, error.CategoryInfo.Category);
        Assert.Contains("Last seen: The cluster is MIXED", error.Exception.Message);
    }

    [Fact]
    public void Get_BbNode_piped_to_Wait_BbNodeState_follows_each_node_by_address_across_an_id_change()
    {
        const string restarting = """{"upgradeModeEnabled":true,"state":"MIXED","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"},{"id":"b2","name":"node-2","ipAddress":"10.0.0.2","state":"OFFLINE"}]}""";
        const string back = """{"upgradeModeEnabled":true,"state":"MIXED","originalVersion":"8.19.3","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"},{"id":"NEW","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.4"}]}""";
        _server.AnswerSteps("GET", "/rest/zdu/cluster", (Reply(ReadyToUpgrade), 1), (Reply(restarting), 2), (Reply(back), 1));

        var r = Run("Get-BbNode | Wait-BbNodeState -State ACTIVE -TimeoutSec 10 -PollIntervalSec 0.02");

        Assert.Null(r.FirstError);
        var nodes = r.Output.Select(o => (ZduNode)o.BaseObject).ToArray();
        Assert.Equal(new[] { "node-1", "node-2" }, nodes.Select(n => n.Name).OrderBy(n => n));
        Assert.Equal("NEW", nodes.Single(n => n.Name == "node-2").Id);
        Assert.Equal(4, _server.Count("GET", "/rest/zdu/cluster"));
    }

    [Fact]
    public void Wait_BbNodeState_times_out_per_node_with_the_last_state_seen()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));

        var r = Run("Wait-BbNodeState -Name node-3 -State ACTIVE -TimeoutSec 2 -PollIntervalSec 0.05");

        var error = Assert.Single(r.Errors);
        Assert.Equal("ZduWaitTimeout,BitbucketZdu.Cmdlets.WaitBbNodeStateCommand", error.FullyQualifiedErrorId);
        Assert.Contains("Last seen: ERROR on 8.19.4", error.Exception.Message);
    }

    [Fact]
    public void A_node_absent_from_the_cluster_counts_as_OFFLINE_and_writes_no_null()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));

        var r = Run("Wait-BbNodeState -Name ghost -State OFFLINE -TimeoutSec 10 -PollIntervalSec 0.05 -Verbose");

        Assert.Null(r.FirstError);
        Assert.Empty(r.Output);
        Assert.Contains(r.Verbose, v => v.Contains("ghost") && v.Contains("counted as OFFLINE"));
    }

    [Fact]
    public void Wait_BbNodeState_without_a_node_says_how_to_name_one()
    {
        var r = Run("Wait-BbNodeState -State ACTIVE");
        Assert.Equal("WaitBbNodeStateNoNode,BitbucketZdu.Cmdlets.WaitBbNodeStateCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, r.FirstError.CategoryInfo.Category);
    }

    [Fact]
    public void Get_BbClusterStatus_in_a_rolling_upgrade_points_at_the_runs_status_and_next_command()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Mixed));
        var mixed = Run("Get-BbClusterStatus");
        Assert.Null(mixed.FirstError);
        Assert.Single(mixed.Output);
        Assert.Contains(mixed.Warnings, w => w.Contains("MIXED") && w.Contains("Get-BbRollingUpgrade -ProfilePath") && w.Contains("-Resume"));
    }

    [Fact]
    public void Get_BbClusterStatus_on_a_stable_cluster_warns_of_nothing()
    {
        _server.Answer("GET", "/rest/zdu/cluster", Reply(Stable));
        var stable = Run("Get-BbClusterStatus");
        Assert.Null(stable.FirstError);
        Assert.Empty(stable.Warnings);
    }

    [Fact]
    public void Retries_show_on_the_verbose_stream_of_the_cmdlet_that_made_the_call()
    {
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(503), 1, Reply(Stable));

        var r = Run("Get-BbClusterStatus -Verbose");

        Assert.Null(r.FirstError);
        Assert.Contains(r.Verbose, v => v.Contains("503") && v.Contains("retry 1"));
    }

    [Fact]
    public void A_refused_start_after_a_409_carries_the_state_explanation_as_ZduInvalidState()
    {
        // The rules allow the start (STABLE with a start link) but the server refuses: it changed meanwhile.
        _server.AnswerSequence("GET", "/rest/zdu/cluster", Reply(Stable), 1, Reply(ReadyToUpgrade));
        _server.Answer("POST", "/rest/zdu/start", Response.Create().WithStatusCode(409));

        var r = Run("Enable-BbUpgradeMode");

        Assert.Equal("ZduInvalidState,BitbucketZdu.Cmdlets.EnableBbUpgradeModeCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Contains("READY_TO_UPGRADE", r.FirstError.Exception.Message);
    }

    [Fact]
    public void Connect_refuses_a_missing_trusted_certificate_file_before_any_request()
    {
        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred -TrustedCertificatePath ./no-such-ca.pem", new Dictionary<string, object?>
        {
            ["uri"] = _server.Url,
            ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
        });

        Assert.Equal("ConnectBbClusterInvalidCertificate,BitbucketZdu.Cmdlets.ConnectBbClusterCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Empty(_server.LogEntries);
        Canary.AssertAbsent(r.AllText, "the PowerShell streams");
    }

    public void Dispose()
    {
        _ps.Dispose();
        _connection.Dispose();
        _server.Stop();
    }
}
