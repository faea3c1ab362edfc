using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>Nodes run by a service: the service definition follows the new dir (flags kept) and goes back on roll back.</summary>
public sealed class ServiceTests : IClassFixture<SshServer>
{
    private readonly SshServer _ssh;

    public ServiceTests(SshServer ssh) => _ssh = ssh;

    [Fact]
    public async Task An_init_script_service_is_switched_to_the_new_dir_started_and_switched_back()
    {
        await using var lab = NodeLab.Create(_ssh);
        var init = Path.Combine(lab.Root, "etc", "init.d", "atlbitbucket");
        Directory.CreateDirectory(Path.GetDirectoryName(init)!);
        File.WriteAllText(init, $$"""
            #!/bin/sh
            # Bitbucket Linux service controller script
            cd "{{lab.OldDir}}/bin" || exit 1
            case "$1" in
                start) ./start-bitbucket.sh --no-search ;;
                stop) ./stop-bitbucket.sh ;;
                *) echo "Usage: $0 {start|stop}"; exit 1 ;;
            esac

            """);
        File.SetUnixFileMode(init, (UnixFileMode)Convert.ToInt32("755", 8));
        lab.Options.SystemdUnitPaths.Clear();
        lab.Options.InitScriptPath = init;
        var steps = lab.Steps(await lab.ShellAsync(Transport.Ssh));

        var inst = await steps.DiscoverAsync(null);
        Assert.Equal(NodeRunMode.InitScript, inst.RunMode);
        Assert.Equal(lab.OldDir, inst.InstallDir);
        Assert.Equal(new[] { "--no-search" }, inst.StartArguments);

        var start = new NodeStartOptions { Timeout = TimeSpan.FromSeconds(20) };
        await steps.StartAsync(inst, start);
        await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = await lab.ArchiveAsync() });
        await steps.StopAsync(inst, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20) });

        var configured = await steps.ConfigureAsync(inst, lab.NewDir);
        Assert.Contains($"-cd \"{lab.OldDir}/bin\" || exit 1\n+cd \"{lab.NewDir}/bin\" || exit 1", configured.Diff);
        Assert.Contains("./start-bitbucket.sh --no-search", File.ReadAllText(init));

        var current = await steps.DiscoverAsync(null);
        Assert.Equal(lab.NewDir, current.InstallDir);
        Assert.True(current.IsConfigured);
        Assert.Equal("RUNNING", (await steps.StartAsync(current, start)).State);
        Assert.Equal(lab.NewDir, lab.StartedWith()["installDir"]);
        Assert.Equal("--no-search", lab.StartedWith()["args"]);

        var back = await steps.RollBackAsync(lab.OldDir, null, new NodeStopOptions { Timeout = TimeSpan.FromSeconds(20) }, start);
        Assert.True(back.Changed);
        Assert.Contains($"+cd \"{lab.OldDir}/bin\" || exit 1", back.Diff);
        Assert.Equal(lab.OldDir, lab.StartedWith()["installDir"]);
        Assert.Equal(lab.OldDir, (await steps.DiscoverAsync(null)).InstallDir);
    }

    [Fact]
    public async Task A_systemd_unit_is_read_and_pointed_at_the_new_dir_keeping_its_flags_and_user()
    {
        await using var lab = NodeLab.Create(_ssh);
        var unit = Path.Combine(lab.Root, "etc", "systemd", "system", "atlbitbucket.service");
        Directory.CreateDirectory(Path.GetDirectoryName(unit)!);
        File.WriteAllText(unit, $"""
            [Unit]
            Description=Atlassian Bitbucket Server Service
            After=syslog.target network.target

            [Service]
            Type=forking
            User=atlbitbucket
            Environment=BITBUCKET_HOME={lab.Home}
            ExecStart={lab.OldDir}/bin/start-bitbucket.sh --no-search
            ExecStop={lab.OldDir}/bin/stop-bitbucket.sh

            [Install]
            WantedBy=multi-user.target

            """);
        lab.Options.SystemdUnitPaths.Clear();
        lab.Options.SystemdUnitPaths.Add(unit);
        lab.Options.InitScriptPath = Path.Combine(lab.Root, "no-init-script");
        var steps = lab.Steps(await lab.ShellAsync(Transport.PSSession));

        var inst = await steps.DiscoverAsync(null);
        Assert.Equal(NodeRunMode.Systemd, inst.RunMode);
        Assert.Equal("atlbitbucket", inst.ServiceName);
        Assert.Equal(lab.OldDir, inst.InstallDir);
        Assert.Equal(new[] { "--no-search" }, inst.StartArguments);
        Assert.Equal(NodeHomeSource.ServiceDefinition, inst.HomeSource);

        await steps.PreStageAsync(inst, new NodeDistribution { LocalPath = await lab.ArchiveAsync() });
        var configured = await steps.ConfigureAsync(inst, lab.NewDir);
        var text = File.ReadAllText(unit);
        Assert.Contains($"ExecStart={lab.NewDir}/bin/start-bitbucket.sh --no-search", text);
        Assert.Contains($"ExecStop={lab.NewDir}/bin/stop-bitbucket.sh", text);
        Assert.Contains("User=atlbitbucket", text);
        Assert.Contains(configured.Carried, c => c.Name == "(service)" && c.To == lab.NewDir);
        Assert.Equal(lab.NewDir, (await steps.DiscoverAsync(null)).InstallDir);
    }
}
