using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using Xunit.Abstractions;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>The node cmdlets as admins use them: one pipeline per node, results binding into the next cmdlet by property name.</summary>
public sealed class CmdletTests : NodeCmdletTestBase, IClassFixture<SshServer>
{
    public CmdletTests(SshServer ssh, ITestOutputHelper output) : base(ssh, output) { }

    /// <summary>Over plain SSH (the module's ssh), and over one PSSession the caller opened and passes to each cmdlet.</summary>
    [Theory]
    [InlineData("Ssh")]
    [InlineData("Session")]
    public async Task A_node_is_upgraded_and_rolled_back_through_a_pipeline(string transport)
    {
        await using var lab = NodeLab.Create(Ssh);
        var archive = await lab.ArchiveAsync();
        var vars = Vars(lab, transport, archive);
        // Over plain SSH the connection flows down the pipeline; a caller's session is passed to each cmdlet ($via).
        vars["via"] = new System.Collections.Hashtable();
        if (transport == "Session") vars["p"] = vars["via"] = new System.Collections.Hashtable { ["Session"] = lab.OpenPSSession() };
        var r = Ps.Run("""
            $n = Get-BbNodeInstallation @p -InstallDir $old
            $n | Start-BbNode @via -StartArgument '--no-search' -TimeoutSec 20 | Out-Null
            $staged = $n | Copy-BbDistribution @via -Path $archive -MinimumFreeSpace 0
            $stopped = $n | Stop-BbNode @via -Confirm:$false -TimeoutSec 20
            $configured = $staged | Install-BbNodeVersion @via
            $started = $configured | Start-BbNode @via -TimeoutSec 20
            $undone = $configured | Undo-BbNodeUpgrade @via -Confirm:$false -TimeoutSec 20 -StartArgument '--no-search'
            $n, $staged, $stopped, $configured, $started, $undone
            """, vars);
        Assert.True(r.FirstError is null, r.AllText);
        Assert.Equal(6, r.Output.Count);
        var n = Base<NodeInstallation>(r.Output[0]);
        Assert.Equal(NodeLab.OldVersion, n.Version);
        if (transport == "Ssh") Assert.Equal("Ssh", r.Output[0].Properties["Transport"].Value.ToString());
        Assert.Equal(lab.NewDir, Base<NodeStepResult>(r.Output[1]).NewInstallDir);
        Assert.True(Base<NodeStepResult>(r.Output[2]).Changed);
        var configured = Base<NodeStepResult>(r.Output[3]);
        Assert.Equal(lab.NewDir, configured.InstallDir);
        Assert.Contains(configured.Carried, c => c.Name == "JVM_MAXIMUM_MEMORY" && c.To == "3g");
        Assert.Equal("RUNNING", Base<NodeStepResult>(r.Output[4]).State);
        Assert.Equal(lab.OldDir, Base<NodeStepResult>(r.Output[5]).InstallDir);
        Assert.Equal(lab.OldDir, lab.StartedWith()["installDir"]);
        Assert.Equal("--no-search", lab.StartedWith()["args"]);
    }

    [Fact]
    public async Task Copy_pre_stages_several_nodes_in_parallel_over_sessions_it_opens()
    {
        await using var a = NodeLab.Create(Ssh);
        await using var b = NodeLab.Create(Ssh);
        var archive = await a.ArchiveAsync();
        var vars = Vars(a, "PowerShell", archive);
        vars["nodes"] = new[] { a.OldDir, b.OldDir }.Select(d => PSObject.AsPSObject(new { InstallDir = d })).ToArray();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = Ps.Run("$nodes | Copy-BbDistribution @p -Path $archive -MinimumFreeSpace 0 -ThrottleLimit 2", vars);
        Output.WriteLine($"Copy-BbDistribution to 2 nodes over PSSession: {sw.ElapsedMilliseconds} ms");
        Assert.True(r.FirstError is null, r.AllText);
        Assert.Equal(2, r.Output.Count);
        Assert.All(r.Output, o => Assert.True(Base<NodeStepResult>(o).Changed));
        Assert.True(Directory.Exists(a.NewDir) && Directory.Exists(b.NewDir));
    }

}
