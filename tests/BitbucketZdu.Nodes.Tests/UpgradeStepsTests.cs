using BitbucketZdu.Core;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Nodes;
using Xunit.Abstractions;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>A node upgraded step by step and rolled back over real SSH, through both transports.</summary>
public sealed class UpgradeStepsTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;
    private readonly ITestOutputHelper _output;

    public UpgradeStepsTests(SshServer ssh, ITestOutputHelper output)
    {
        _ssh = ssh;
        _output = output;
    }

    [Theory]
    [InlineData(Transport.Ssh)]
    [InlineData(Transport.PSSession)]
    public async Task Upgrades_a_simulated_node_step_by_step_and_rolls_back(Transport transport)
    {
        await using var lab = await NodeLab.CreateSimulatedAsync(_ssh);
        var archive = await lab.ArchiveAsync();
        var shell = await StepTimings.Time(_output, transport, "open shell", () => lab.ShellAsync(transport));
        var steps = lab.Steps(shell);
        var oldSnapshot = lab.Snapshot(lab.OldDir);

        // The old version runs (started by hand, as before the upgrade).
        var start0 = await steps.StartAsync(await steps.DiscoverAsync(lab.OldDir), new NodeStartOptions { StartArguments = new[] { "--no-search" }, Timeout = TimeSpan.FromSeconds(20) });
        Assert.True(start0.Changed);
        var oldPid = lab.Pid()!.Value;

        // As in the vendor procedure: upgrade mode first, or the cluster puts a newer node in ERROR.
        using (var client = lab.ZduClient())
            Assert.True((await client.StartAsync()).UpgradeModeEnabled);

        var inst = await StepTimings.Time(_output, transport, "discover", () => steps.DiscoverAsync(lab.OldDir));
        Assert.Equal(NodeLab.OldVersion, inst.Version);
        Assert.Equal(lab.Home, inst.HomeDir);
        Assert.Equal(NodeHomeSource.SetHomeScript, inst.HomeSource);
        Assert.Equal(NodeRunMode.BinScripts, inst.RunMode);
        Assert.Equal(Environment.UserName, inst.RunAsUser);
        Assert.Equal("/opt/java/jre17", inst.JreHome);
        Assert.Equal(lab.HttpPort, inst.HttpPort);
        Assert.True(inst.IsRunning);
        Assert.Equal(oldPid, inst.ProcessId);
        Assert.True(inst.FreeBytes > 0);

        var staged = await StepTimings.Time(_output, transport, "pre-stage", () => steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive }));
        Assert.True(staged.Changed);
        Assert.Equal(lab.NewDir, staged.NewInstallDir);
        Assert.True(File.Exists(Path.Combine(lab.NewDir, "app/WEB-INF/lib/bitbucket-api-8.19.2.jar")));
        Assert.Equal(new[] { "atlassian-bitbucket-8.19.1", "atlassian-bitbucket-8.19.2" }, lab.OptListing());
        Assert.True(LabNodeIsAlive(oldPid), "pre-staging must not disturb the running node");

        var stopped = await StepTimings.Time(_output, transport, "stop", () => steps.StopAsync(inst, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20) }));
        Assert.True(stopped.Changed);
        Assert.False(LabNodeIsAlive(oldPid));

        var configured = await StepTimings.Time(_output, transport, "configure", () => steps.ConfigureAsync(inst, lab.NewDir));
        Assert.True(configured.Changed);
        Assert.Contains(configured.Carried, c => c.Name == "BITBUCKET_HOME" && c.To == lab.Home);
        Assert.Contains(configured.Carried, c => c.Name == "JVM_MAXIMUM_MEMORY" && c.From == "1g" && c.To == "3g");
        Assert.Contains(configured.Carried, c => c.Name == "JRE_HOME" && c.To == "/opt/java/jre17");
        Assert.Contains(configured.Carried, c => c.Name == "BITBUCKET_USER" && c.To == Environment.UserName);
        Assert.Contains("-JVM_MAXIMUM_MEMORY=1g\n+JVM_MAXIMUM_MEMORY=3g", configured.Diff);
        Assert.Contains($"+BITBUCKET_HOME={lab.Home}", configured.Diff);
        Assert.True(new FileInfo(Path.Combine(lab.NewDir, "bin/set-bitbucket-home.sh")).UnixFileMode.HasFlag(UnixFileMode.UserExecute), "edited scripts stay executable");

        var newInst = await steps.DiscoverAsync(lab.NewDir);
        Assert.True(newInst.IsStaged && newInst.IsConfigured);
        Assert.Equal(lab.OldDir, newInst.PreviousInstallDir);
        Assert.Equal(NodeLab.NewVersion, newInst.Version);
        var started = await StepTimings.Time(_output, transport, "start (to RUNNING)", () => steps.StartAsync(newInst, new NodeStartOptions { StartArguments = new[] { "--no-search" }, Timeout = TimeSpan.FromSeconds(20) }));
        Assert.Equal("RUNNING", started.State);
        var with = lab.StartedWith();
        Assert.Equal(lab.NewDir, with["installDir"]);
        Assert.Equal("--no-search", with["args"]);
        Assert.Equal("3g", with["JVM_MAXIMUM_MEMORY"]);

        var rolledBack = await StepTimings.Time(_output, transport, "roll back (to RUNNING)", () => steps.RollBackAsync(lab.OldDir, lab.NewDir, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20) }, new NodeStartOptions { StartArguments = new[] { "--no-search" }, Timeout = TimeSpan.FromSeconds(20) }));
        Assert.True(rolledBack.Changed);
        Assert.Equal("RUNNING", rolledBack.State);
        Assert.Equal(lab.OldDir, lab.StartedWith()["installDir"]);

        // Re-runs find the work done.
        Assert.False((await steps.RollBackAsync(lab.OldDir, lab.NewDir, null, new NodeStartOptions { Timeout = TimeSpan.FromSeconds(20) })).Changed);
        Assert.False((await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = archive })).Changed);
        Assert.False((await steps.ConfigureAsync(inst, lab.NewDir)).Changed);

        var after = lab.Snapshot(lab.OldDir);
        Assert.Equal(oldSnapshot, after);
    }

    private static bool LabNodeIsAlive(int pid) => NodeLab.IsAlive(pid);
}
