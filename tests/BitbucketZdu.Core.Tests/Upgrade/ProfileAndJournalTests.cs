using System.Collections;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Profile;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

public sealed class ProfileReaderTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    private static Hashtable Node(Hashtable data, int i) => (Hashtable)((object[])data["Nodes"]!)[i];

    [Fact]
    public void A_valid_profile_maps_every_setting()
    {
        var data = _f.ProfileData(To);
        data["MinFreeDiskGB"] = 1.5;
        data["MaxUsersPerNode"] = "300";
        Node(data, 2)["ApiAddress"] = "10.0.0.3:5701";
        Node(data, 2)["Service"] = "windowsservice";

        var p = ClusterProfileReader.Read(data, "prod.psd1");

        Assert.Equal("prod", p.Name);
        Assert.Equal(new Uri("https://bitbucket.example.com"), p.BaseUrl);
        Assert.Equal("8.19.4", p.TargetVersion.ToString());
        Assert.Equal(3, p.Nodes.Count);
        Assert.Equal("Nodes[2]", p.Nodes[2].Place);
        Assert.Equal(ServiceKind.WindowsService, p.Nodes[2].ServiceKind);
        Assert.Equal("10.0.0.3:5701", p.Nodes[2].ApiAddress);
        Assert.Equal("lb", p.Nodes[0].Members.Single().LoadBalancer);
        Assert.Equal("bitbucket/node-1", p.Nodes[0].Members.Single().Member);
        Assert.Equal("127.0.0.1:9999", p.LoadBalancers.Single().Settings["adminsocket"]);
        Assert.Equal((long)(1.5 * 1024 * 1024 * 1024), p.MinFreeDiskBytes);
        Assert.Equal(300, p.MaxUsersPerNode);
        Assert.Equal(TimeSpan.FromSeconds(60), p.Timeouts.Start);
        Assert.False(p.Archive.IsUrl);
    }

    [Fact]
    public void Every_problem_is_reported_with_its_place()
    {
        var data = _f.ProfileData(To);
        data.Remove("Name");
        data["TargetVersion"] = "latest";
        Node(data, 0)["Colour"] = "blue";
        Node(data, 1)["Url"] = "ftp://10.0.0.2/";
        Node(data, 2).Remove("Member");
        Node(data, 2)["Members"] = new Hashtable { ["nope"] = "x" };
        ((Hashtable)data["Archive"]!)["Sha256"] = "abc";

        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data, "prod.psd1"));

        var places = ex.Issues.ToDictionary(i => i.Place, i => i.ErrorId);
        Assert.Equal("ProfileMissingValue", places["Name"]);
        Assert.Equal("ProfileInvalidValue", places["TargetVersion"]);
        Assert.Equal("ProfileUnknownKey", places["Nodes[0].Colour"]);
        Assert.Equal("ProfileInvalidValue", places["Nodes[1].Url"]);
        Assert.Equal("ProfileUnknownLoadBalancer", places["Nodes[2].Members.nope"]);
        Assert.Equal("ProfileInvalidNode", places["Nodes[2].Member"]);
        Assert.Equal("ProfileInvalidValue", places["Archive.Sha256"]);
        Assert.Equal("ProfileMissingValue", ex.ErrorId);
        Assert.Contains("prod.psd1", ex.Message);
        Assert.Contains("Nodes[2].Members.nope", ex.Message);
    }

    [Fact]
    public void Ssh_settings_apply_cluster_wide_a_node_wins_key_by_key_and_files_must_exist()
    {
        var key = Path.Combine(_f.Directory, "id_ed25519");
        var hosts = Path.Combine(_f.Directory, "known_hosts");
        var nodeKey = Path.Combine(_f.Directory, "node3_key");
        File.WriteAllText(key, "k");
        File.WriteAllText(hosts, "h");
        File.WriteAllText(nodeKey, "k3");
        var data = _f.ProfileData(To);
        data["Ssh"] = new Hashtable { ["KeyFilePath"] = key, ["KnownHostsFile"] = hosts };
        Node(data, 2)["Remoting"] = "ssh://deploy@node-3:2222";
        Node(data, 2)["Ssh"] = new Hashtable { ["KeyFilePath"] = nodeKey };

        var p = ClusterProfileReader.Read(data);

        Assert.Equal(key, p.Nodes[0].Ssh.KeyFilePath);
        Assert.Equal(hosts, p.Nodes[0].Ssh.KnownHostsFile);
        var target = BitbucketZdu.Core.Upgrade.Adapters.RemotingTarget.Parse(p.Nodes[2]);
        Assert.Equal(nodeKey, target.Ssh.KeyFilePath);
        Assert.Equal(hosts, target.Ssh.KnownHostsFile);

        data["Ssh"] = new Hashtable { ["KeyFilePath"] = Path.Combine(_f.Directory, "missing_key"), ["Identity"] = "x" };
        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data));
        var places = ex.Issues.ToDictionary(i => i.Place, i => i);
        Assert.Equal("ProfileInvalidValue", places["Ssh.KeyFilePath"].ErrorId);
        Assert.Contains("does not exist on this machine", places["Ssh.KeyFilePath"].Message);
        Assert.Equal("ProfileUnknownKey", places["Ssh.Identity"].ErrorId);
    }

    [Fact]
    public void One_node_is_not_a_cluster()
    {
        var data = _f.ProfileData(To);
        data["Nodes"] = new object[] { Node(data, 0) };
        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data));
        Assert.Contains(ex.Issues, i => i.Place == "Nodes" && i.ErrorId == "ProfileInvalidNode");
    }

    [Fact]
    public void Duplicate_nodes_and_path_plus_url_are_refused()
    {
        var data = _f.ProfileData(To);
        Node(data, 1)["Name"] = "node-1";
        ((Hashtable)data["Archive"]!)["Url"] = "https://www.atlassian.com/x.tar.gz";
        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data));
        Assert.Contains(ex.Issues, i => i.Place == "Nodes[1].Name" && i.ErrorId == "ProfileDuplicate");
        Assert.Contains(ex.Issues, i => i.Place == "Archive" && i.Message.Contains("not both"));
    }

    public void Dispose() => _f.Dispose();
}

public sealed class JournalStoreTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Fact]
    public async Task Entries_round_trip_and_a_torn_last_line_is_ignored()
    {
        await _f.Journal.AppendAsync("prod", new JournalEntry { RunId = "r1", Kind = JournalKinds.RunStarted, TargetVersion = To, NodeOrder = new() { "b", "a" } }, default);
        await _f.Journal.AppendAsync("prod", new JournalEntry { RunId = "r1", Kind = JournalKinds.StepBegin, Step = PlanStepKeys.EnableUpgradeMode }, default);
        File.AppendAllText(_f.Journal.JournalFile("prod"), "{\"runId\":\"r1\",\"ki");

        var entries = await _f.ReadJournal();
        var run = JournalRun.Last(entries)!;

        Assert.Equal(2, entries.Count);
        Assert.Equal(new[] { "b", "a" }, run.NodeOrder);
        Assert.True(run.StartedUpgradeMode);
        Assert.False(run.Completed);
    }

    [Fact]
    public async Task A_damaged_line_before_the_end_is_an_error()
    {
        System.IO.Directory.CreateDirectory(_f.Journal.Directory);
        File.WriteAllText(_f.Journal.JournalFile("prod"), "not json\n{\"runId\":\"r1\",\"kind\":\"run-started\"}\n");
        var ex = await Assert.ThrowsAsync<BbException>(() => _f.ReadJournal());
        Assert.Equal("JournalCorrupt", ex.ErrorId);
        Assert.Contains("line 1", ex.Message);
    }

    [Fact]
    public async Task The_lock_stops_a_second_run_and_names_the_holder()
    {
        _f.LivePids.Add(111);
        await using var held = await _f.Journal.AcquireLockAsync("prod", new LockOwner(Environment.MachineName, 111), default);

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(222), CancellationToken.None));

        Assert.Equal("JournalLocked", ex.ErrorId);
        Assert.Contains("process 111 on " + Environment.MachineName, ex.Message);
        Assert.Empty(_f.World.Operations);
    }

    [Fact]
    public async Task A_lock_left_by_a_dead_process_on_this_host_is_taken_over()
    {
        var stale = await _f.Journal.AcquireLockAsync("prod", new LockOwner(Environment.MachineName, 333), default);
        // pid 333 is not alive (not in LivePids); the lock file stays as a killed process leaves it.

        var result = await _f.Runner().RunAsync(_f.Profile, Options(444), CancellationToken.None);

        Assert.True(result.Report!.Succeeded);
        Assert.Contains(_f.Host.Warnings, w => w.Contains("process 333"));
        Assert.False(File.Exists(_f.Journal.LockFile("prod")));
        await stale.DisposeAsync(); // releasing a lock it no longer owns does not delete anybody else's
    }

    [Fact]
    public async Task A_lock_from_another_host_is_never_taken_over()
    {
        System.IO.Directory.CreateDirectory(_f.Journal.Directory);
        File.WriteAllText(_f.Journal.LockFile("prod"), "{\"host\":\"other-host\",\"pid\":1,\"since\":\"2026-01-01T00:00:00+00:00\"}");

        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Journal.AcquireLockAsync("prod", new LockOwner(Environment.MachineName, 5), default));

        Assert.Equal("JournalLocked", ex.ErrorId);
        Assert.Contains("other-host", ex.Message);
        Assert.Contains("delete the lock file", ex.Message);
    }

    [Fact]
    public async Task The_journal_holds_no_secret_and_says_what_ran()
    {
        await _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None);
        var text = File.ReadAllText(_f.Journal.JournalFile("prod"));
        Assert.DoesNotContain("password", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Authorization", text, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"step\":\"node-1/stop\"", text);
    }

    public void Dispose() => _f.Dispose();
}
