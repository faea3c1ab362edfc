using System.Management.Automation;
using System.Net.Sockets;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>A real HAProxy (admin Unix + TCP sockets, an operator-only socket) with backend 'bitbucket' = node-1, node-2, node-3.</summary>
public sealed class LoadBalancerCmdletFixture : IAsyncLifetime
{
    public string Dir { get; } = Path.Combine("/tmp", "bbzdu-lbc-" + Guid.NewGuid().ToString("N")[..8]);
    public int AdminPort { get; } = FreePort.Next();
    public int[] NodePorts { get; } = { FreePort.Next(), FreePort.Next(), FreePort.Next() };
    public string AdminSocket => Path.Combine(Dir, "admin.sock");
    public string OperatorSocket => Path.Combine(Dir, "oper.sock");
    private ExternalProcess? _haproxy;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        var cfg = Path.Combine(Dir, "haproxy.cfg");
        File.WriteAllText(cfg, $@"
global
  stats socket {AdminSocket} mode 600 level admin
  stats socket {OperatorSocket} mode 600 level operator
  stats socket ipv4@127.0.0.1:{AdminPort} level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
backend bitbucket
  server node-1 127.0.0.1:{NodePorts[0]}
  server node-2 127.0.0.1:{NodePorts[1]}
  server node-3 127.0.0.1:{NodePorts[2]}
");
        _haproxy = ExternalProcess.Start(RequiredTool.Find("haproxy"), new[] { "-db", "-f", cfg });
        await Eventually.UntilAsync(() => File.Exists(AdminSocket) && CanConnect(AdminPort), TimeSpan.FromSeconds(15), "HAProxy admin sockets; output: " + _haproxy.Output);
    }

    public async Task ResetAsync()
    {
        using var lb = LoadBalancerFactory.Create(new LoadBalancerDescription(LoadBalancerKind.HAProxy, new[] { AdminSocket }, "bitbucket"));
        foreach (var m in await lb.GetMembersAsync(CancellationToken.None))
            if (m.State != MemberAdminState.Ready) await lb.SetStateAsync(m, MemberAdminState.Ready, CancellationToken.None);
    }

    private static bool CanConnect(int port)
    {
        try { using var c = new TcpClient(); c.Connect("127.0.0.1", port); return true; }
        catch (SocketException) { return false; }
    }

    public async Task DisposeAsync()
    {
        if (_haproxy is not null) await _haproxy.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

public sealed class LoadBalancerCmdletTests : IClassFixture<LoadBalancerCmdletFixture>, IAsyncLifetime, IDisposable
{
    private readonly LoadBalancerCmdletFixture _fx;
    private readonly PowerShellHost _ps = new();

    public LoadBalancerCmdletTests(LoadBalancerCmdletFixture fx) => _fx = fx;

    public Task InitializeAsync() => _fx.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private Dictionary<string, object?> Vars() => new()
    {
        ["sock"] = "unix://" + _fx.AdminSocket,
        ["tcp"] = $"tcp://127.0.0.1:{_fx.AdminPort}",
        ["oper"] = _fx.OperatorSocket,
        ["p2"] = _fx.NodePorts[1],
    };

    private const string Describe = "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $sock,$tcp -Backend bitbucket -MemberMap @{ 'bb-3' = 'node-3' };";

    private string StateOf(string member) =>
        _ps.Run(Describe + $" (Get-BbLoadBalancerMember -LoadBalancer $lb -Name {member}).State", Vars()).Output.Single().ToString();

    [Fact]
    public void New_describes_once_and_Get_lists_the_members()
    {
        var r = _ps.Run(Describe + " $lb; Get-BbLoadBalancerMember -LoadBalancer $lb; $lb | Get-BbLoadBalancerMember -Name 'node-[12]'", Vars());
        Assert.Null(r.FirstError);
        var lb = Assert.IsType<LoadBalancerDescription>(r.Output[0].BaseObject);
        Assert.Equal(2, lb.Endpoints.Count);
        Assert.Equal("node-3", lb.MemberMap["bb-3"]);
        var members = r.Output.Skip(1).Select(o => (LoadBalancerMember)o.BaseObject).ToList();
        Assert.Equal(new[] { "node-1", "node-2", "node-3", "node-1", "node-2" }, members.Select(m => m.Name));
        Assert.All(members, m => Assert.Equal(MemberAdminState.Ready, m.State));
    }

    [Fact]
    public void Nodes_from_the_pipeline_are_removed_and_added_back_with_typed_results()
    {
        var nodes = new[]
        {
            new ZduNode { Name = "node-1", IpAddress = "127.0.0.1", PortNumber = _fx.NodePorts[0], Id = "a" },
        };
        var vars = Vars();
        vars["nodes"] = nodes;
        var r = _ps.Run(Describe + " $nodes | Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -DrainTimeoutSec 5", vars);
        Assert.Null(r.FirstError);
        var removed = Assert.IsType<LoadBalancerChangeResult>(Assert.Single(r.Output).BaseObject);
        Assert.Equal(("Remove", "node-1", "node-1", MemberAdminState.Ready, MemberAdminState.Maintenance), (removed.Action, removed.Member, removed.Node, removed.PreviousState, removed.State));
        Assert.Equal(0, removed.ConnectionsCut);
        Assert.Equal("Maintenance", StateOf("node-1"));

        r = _ps.Run(Describe + " $nodes | Add-BbNodeToLoadBalancer -LoadBalancer $lb -HealthTimeoutSec 5", vars);
        Assert.Null(r.FirstError);
        var added = Assert.IsType<LoadBalancerChangeResult>(Assert.Single(r.Output).BaseObject);
        Assert.Equal(MemberAdminState.Ready, added.State);
        Assert.Equal("Ready", StateOf("node-1"));
    }

    [Fact]
    public void Nodes_map_by_address_and_by_the_member_map_and_members_can_be_named_directly()
    {
        var r = _ps.Run(Describe + " [pscustomobject]@{ Name = 'bb-2'; IpAddress = '127.0.0.1'; PortNumber = $p2 } | Remove-BbNodeFromLoadBalancer -LoadBalancer $lb", Vars());
        Assert.Null(r.FirstError);
        Assert.Equal("node-2", ((LoadBalancerChangeResult)r.Output.Single().BaseObject).Member);
        r = _ps.Run(Describe + " Add-BbNodeToLoadBalancer -LoadBalancer $lb -Member node-2; Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name bb-3", Vars());
        Assert.Null(r.FirstError);
        Assert.Equal(new[] { "node-2", "node-3" }, r.Output.Select(o => ((LoadBalancerChangeResult)o.BaseObject).Member));
        Assert.Equal("Maintenance", StateOf("node-3"));
    }

    [Fact]
    public void WhatIf_changes_nothing_and_writes_no_result()
    {
        var r = _ps.Run(Describe + " Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name node-1 -WhatIf", Vars());
        Assert.Null(r.FirstError);
        Assert.Empty(r.Output);
        Assert.Equal("Ready", StateOf("node-1"));
    }

    [Fact]
    public void A_second_member_out_is_refused_with_a_stable_error_id()
    {
        var r = _ps.Run(Describe + " Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Member node-1, node-2", Vars());
        Assert.Single(r.Output);
        Assert.Equal("LoadBalancerTooManyMembersOut,BitbucketZdu.Cmdlets.RemoveBbNodeFromLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal("Ready", StateOf("node-2"));
    }

    [Fact]
    public void Wrong_member_and_missing_permission_give_error_records_and_change_nothing()
    {
        var r = _ps.Run(Describe + " Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name node-9", Vars());
        Assert.Equal("LoadBalancerMemberNotFound,BitbucketZdu.Cmdlets.RemoveBbNodeFromLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, r.FirstError.CategoryInfo.Category);

        r = _ps.Run("$op = New-BbLoadBalancer HAProxy $oper bitbucket; Remove-BbNodeFromLoadBalancer -LoadBalancer $op -Member node-1", Vars());
        Assert.Equal("HAProxyPermissionDenied,BitbucketZdu.Cmdlets.RemoveBbNodeFromLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.PermissionDenied, r.FirstError.CategoryInfo.Category);
        Assert.Equal("Ready", StateOf("node-1"));
    }

    [Fact]
    public void New_validates_before_anything_is_contacted()
    {
        var r = _ps.Run("New-BbLoadBalancer -Kind Apache -Endpoint http://a/balancer-manager, http://b/balancer-manager -Backend bb");
        Assert.Equal("NewBbLoadBalancerInvalidEndpoint,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind HAProxy -Endpoint 'not-a-socket' -Backend bb");
        Assert.Equal("HAProxyInvalidEndpoint,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g -Backend pool -AzureAuthentication Token");
        Assert.Equal("NewBbLoadBalancerMissingToken,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        var token = Canary.Secure(Canary.Token);
        r = _ps.Run("New-BbLoadBalancer -Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g -Backend pool -AzureAuthentication Token -AzureToken $t | Format-List | Out-String",
            new Dictionary<string, object?> { ["t"] = token });
        Assert.Null(r.FirstError);
        Assert.Contains("AzureAppGateway", r.AllText);
        Canary.AssertAbsent(r.AllText, "the formatted description");
    }

    [Fact]
    public void New_takes_a_kinds_own_settings_and_refuses_one_it_does_not_take()
    {
        var vars = new Dictionary<string, object?> { ["c"] = new PSCredential("f5ops", Canary.Secure(Canary.Password)) };
        var r = _ps.Run("$f5 = New-BbLoadBalancer -Kind F5BigIp -Endpoint https://bigip1.example.com, https://bigip2.example.com -Backend bitbucket -ApiCredential $c "
            + "-Setting @{ Partition = 'Tenant1'; ConfigSync = $false }; $f5.Options['Partition']; $f5.Options['ConfigSync']; $f5.Endpoints.Count", vars);
        Assert.Null(r.FirstError);
        Assert.Equal(new[] { "Tenant1", "false", "2" }, r.Output.Select(o => o.ToString()));
        r = _ps.Run("New-BbLoadBalancer -Kind F5BigIp -Endpoint https://bigip1.example.com -Backend bitbucket -Setting @{ NginxCommand = 'nginx' }");
        Assert.Equal("NewBbLoadBalancerUnknownSetting,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind F5BigIp -Endpoint https://bigip1.example.com -Backend bitbucket -Setting @{ ConfigSync = 'maybe' }");
        Assert.Equal("NewBbLoadBalancerInvalidSetting,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind F5BigIp -Endpoint bigip1:443 -Backend bitbucket");
        Assert.Equal("F5InvalidEndpoint,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
    }

    [Fact]
    public void The_profile_template_is_written_from_the_kinds_descriptor()
    {
        var path = Path.Combine(Path.GetTempPath(), "bbzdu-tpl-" + Guid.NewGuid().ToString("N") + ".psd1");
        try
        {
            var r = _ps.Run("New-BbClusterProfile -Path $p -LoadBalancerKind F5BigIp | Out-Null; Import-PowerShellDataFile $p", new Dictionary<string, object?> { ["p"] = path });
            Assert.Null(r.FirstError);
            var text = File.ReadAllText(path);
            Assert.Contains("Kind     = 'F5BigIp'", text, StringComparison.Ordinal);
            Assert.Contains("#   Partition", text, StringComparison.Ordinal);
            Assert.Contains("#   CredentialAsset", text, StringComparison.Ordinal);
            Assert.Contains("-LoadBalancerCredential", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public void Dispose() => _ps.Dispose();
}
