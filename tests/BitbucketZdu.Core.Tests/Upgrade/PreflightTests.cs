using System.Collections;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

public sealed class PreflightTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    private Task<PreflightResult> Preflight(ClusterProfile? profile = null, bool resume = false) =>
        new PreflightCheck(FakePorts.Create(_f.World, _f.Journal), _f.Host).RunAsync(profile ?? _f.Profile, resume, CancellationToken.None);

    private async Task<PreflightFinding> RefusedWith(string check, ClusterProfile? profile = null)
    {
        var before = _f.World.Operations.Count;
        var result = await Preflight(profile);
        Assert.False(result.Passed);
        var finding = Assert.Single(result.Errors, e => e.Check == check);
        // Preflight changes nothing, and the runner refuses with the same ErrorId before any change.
        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(profile ?? _f.Profile, Options(1), CancellationToken.None));
        Assert.Equal(result.Errors.First().Check, ex.ErrorId);
        Assert.Contains("nothing was changed", ex.Message);
        Assert.Equal(before, _f.World.Operations.Count);
        Assert.Empty(await _f.ReadJournal());
        return finding;
    }

    private ClusterProfile WithTarget(string target)
    {
        var data = _f.ProfileData(target);
        return ClusterProfileReader.Read(data, "prod.psd1");
    }

    /// <summary>
    /// Issue 18: a wrong password is tried once per preflight (Bitbucket requires a CAPTCHA after a few failed logins),
    /// not once per node URL in parallel; the preflight ends at once with the API's ZduUnauthorized. When the cluster
    /// URL does not answer at all, the node URLs are tried one by one, so the credential is still tried once.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_refused_credential_is_tried_once_and_ends_the_preflight_with_ZduUnauthorized(bool clusterUrlAnswers)
    {
        var logins = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var process = new FakeProcess();
        var real = FakePorts.Create(_f.World, _f.Journal, process);
        IZduClient Refusing(Uri url, bool answers) => new CredentialRefusingClient(url, answers, logins);
        var ports = new BitbucketZdu.Core.Upgrade.Ports.UpgradePorts(Refusing(new Uri("http://cluster.fake/"), clusterUrlAnswers),
            n => Refusing(new Uri($"http://{n.Name}.fake/"), true), real.Rotation, real.Nodes, _f.Journal, _f.World.UpgradeClock);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => new PreflightCheck(ports, _f.Host).RunAsync(_f.Profile, false, CancellationToken.None));

        Assert.Equal("ZduUnauthorized", ex.ErrorId);
        Assert.Single(logins);
        Assert.Equal(clusterUrlAnswers ? "http://cluster.fake/" : "http://node-1.fake/", logins.Single());
        Assert.Empty(_f.World.Operations);
    }

    /// <summary>A client whose every call is refused with 401 (a wrong password), or that cannot reach its URL at all.</summary>
    private sealed class CredentialRefusingClient : IZduClient
    {
        private readonly bool _answers;
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _logins;

        public CredentialRefusingClient(Uri url, bool answers, System.Collections.Concurrent.ConcurrentQueue<string> logins)
        {
            BaseUri = url;
            _answers = answers;
            _logins = logins;
        }

        public Uri BaseUri { get; }

        private Task<T> Refuse<T>()
        {
            if (!_answers) throw new ZduApiException(ZduErrorKind.Unreachable, $"Connection refused ({BaseUri})", BaseUri);
            _logins.Enqueue(BaseUri.ToString());
            throw new ZduApiException(ZduErrorKind.Unauthorized, $"GET {BaseUri}rest/zdu/cluster returned 401.", BaseUri, 401);
        }

        public Task<ZduCluster> GetClusterAsync(CancellationToken ct = default) => Refuse<ZduCluster>();
        public Task<ZduStateResponse> GetStateAsync(CancellationToken ct = default) => Refuse<ZduStateResponse>();
        public Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken ct = default) => Refuse<ZduNode>();
        public Task<ZduCluster> StartAsync(CancellationToken ct = default) => Refuse<ZduCluster>();
        public Task<ZduCluster> CancelAsync(CancellationToken ct = default) => Refuse<ZduCluster>();
        public Task<ZduCluster> ApproveAsync(CancellationToken ct = default) => Refuse<ZduCluster>();
        public Task<ZduCluster> RetryUpgradeAsync(CancellationToken ct = default) => Refuse<ZduCluster>();
        public void Dispose() { }
    }

    [Fact]
    public async Task A_healthy_cluster_passes_and_nothing_changes()
    {
        var result = await Preflight();

        Assert.True(result.Passed, string.Join("\n", result.Findings));
        Assert.Contains(result.Findings, f => f.Check == "PreflightVersion" && f.Message.Contains("8.19.3 -> 8.19.4"));
        Assert.Contains(result.Findings, f => f.Check == "PreflightArchive" && f.Message.Contains("matches"));
        Assert.Equal("PreflightPassed", result.Findings[^1].Check);
        Assert.Empty(_f.World.Operations);
    }

    [Fact]
    public async Task An_apache_only_profile_warns_that_git_over_ssh_is_not_drained()
    {
        var data = _f.ProfileData("8.19.4");
        var lb = (Hashtable)((object[])data["LoadBalancers"]!)[0];
        lb["Kind"] = "Apache";
        lb["Settings"] = new Hashtable { ["Endpoint"] = "http://127.0.0.1:9999/balancer-manager", ["Backend"] = "bitbucket" };
        var apache = await Preflight(ClusterProfileReader.Read(data, "prod.psd1"));
        var haproxy = await Preflight();

        var warning = Assert.Single(apache.Findings, f => f.Check == "PreflightSshNotDrained");
        Assert.Equal(FindingSeverity.Warning, warning.Severity);
        Assert.Contains("SSH", warning.Message);
        Assert.Contains("HTTP only", warning.Message);
        Assert.DoesNotContain(haproxy.Findings, f => f.Check == "PreflightSshNotDrained");
    }

    /// <summary>
    /// The warning comes from each kind's descriptor, not a name check for Apache: NGINX Plus (whose stream upstreams
    /// the module does not drive) warns too, and a profile that has any kind carrying SSH next to Apache does not.
    /// </summary>
    [Theory]
    [InlineData("NginxPlus", "", true)]
    [InlineData("Apache", "HAProxy", false)]
    public async Task The_ssh_warning_follows_what_each_kind_can_carry(string kind, string secondKind, bool warns)
    {
        var data = _f.ProfileData("8.19.4");
        var lbs = (object[])data["LoadBalancers"]!;
        var first = (Hashtable)lbs[0];
        var haproxyEntry = (Hashtable)first.Clone();
        first["Kind"] = kind;
        first["Settings"] = new Hashtable { ["Endpoint"] = "http://127.0.0.1:9999/api", ["Backend"] = "bitbucket" };
        if (secondKind.Length > 0)
        {
            var second = (Hashtable)haproxyEntry.Clone();
            second["Name"] = "lb-ssh";
            second["Kind"] = secondKind;
            data["LoadBalancers"] = new object[] { first, second };
            foreach (Hashtable n in (object[])data["Nodes"]!)
            {
                n["Members"] = new Hashtable { ["lb"] = n["Member"], ["lb-ssh"] = n["Member"] };
                n.Remove("Member");
            }
        }
        var result = await Preflight(ClusterProfileReader.Read(data, "prod.psd1"));

        Assert.Equal(warns, result.Findings.Any(f => f.Check == "PreflightSshNotDrained"));
        if (warns) Assert.Contains("stream upstreams", result.Findings.Single(f => f.Check == "PreflightSshNotDrained").Message);
    }

    [Fact]
    public async Task A_downgrade_is_refused()
    {
        var f = await RefusedWith("PreflightDowngrade", WithTarget("8.19.2"));
        Assert.Equal("TargetVersion", f.Place);
        Assert.Contains("cannot downgrade", f.Message);
    }

    [Fact]
    public async Task A_feature_jump_is_refused()
    {
        var f = await RefusedWith("PreflightNotBugfixUpgrade", WithTarget("8.20.0"));
        Assert.Contains("not on the 8.19 line", f.Message);
    }

    [Fact]
    public async Task The_same_version_is_refused() =>
        await RefusedWith("PreflightAlreadyOnTarget", WithTarget(From));

    [Fact]
    public async Task An_unhealthy_node_is_refused()
    {
        _f.World["node-2"].ForceError = true;
        var f = await RefusedWith("PreflightNodeNotActive");
        Assert.Equal("node-2", f.Target);
        Assert.Equal("Nodes[1]", f.Place);
    }

    [Fact]
    public async Task A_missing_load_balancer_member_is_refused_with_its_place()
    {
        _f.World["node-3"].MemberFound = false;
        var f = await RefusedWith("PreflightMemberNotFound");
        Assert.Equal("Nodes[2].Member", f.Place);
        Assert.Contains("lb:bitbucket/node-3", f.Message);
    }

    [Fact]
    public async Task An_unreachable_load_balancer_and_remoting_are_refused()
    {
        _f.World["node-1"].LoadBalancerReachable = false;
        _f.World["node-2"].HostReachable = false;
        var result = await Preflight();
        Assert.Contains(result.Errors, e => e.Check == "PreflightLoadBalancerUnreachable" && e.Place == "Nodes[0].Member");
        Assert.Contains(result.Errors, e => e.Check == "PreflightRemotingUnreachable" && e.Place == "Nodes[1].Remoting");
    }

    [Fact]
    public async Task A_node_the_others_do_not_see_is_refused()
    {
        _f.World.Partitions.Add(("node-1", "node-3"));
        var f = await RefusedWith("PreflightNodeNotSeen");
        Assert.Contains("node-1 does not see node-3", f.Message);
    }

    [Fact]
    public async Task A_cluster_node_missing_from_the_profile_is_refused()
    {
        _f.World.Nodes.Add(new FakeNode { Name = "node-4", Ip = "10.0.0.4", InstalledVersion = From, StartedAt = TimeSpan.FromHours(-1) });
        var f = await RefusedWith("PreflightNodeNotInProfile");
        Assert.Contains("node-4", f.Message);
    }

    [Fact]
    public async Task A_profile_node_unknown_to_the_cluster_is_refused()
    {
        var data = _f.ProfileData(To);
        ((Hashtable)((object[])data["Nodes"]!)[1])["Name"] = "node-9";
        var f = await RefusedWith("PreflightNodeNotInCluster", ClusterProfileReader.Read(data, "prod.psd1"));
        Assert.Equal("Nodes[1].Name", f.Place);
    }

    [Fact]
    public async Task Low_disk_space_and_a_wrong_checksum_are_refused()
    {
        _f.World["node-2"].FreeDisk = 100L * 1024 * 1024;
        var data = _f.ProfileData(To);
        ((Hashtable)data["Archive"]!)["Sha256"] = new string('a', 64);
        var result = await Preflight(ClusterProfileReader.Read(data, "prod.psd1"));
        Assert.Contains(result.Errors, e => e.Check == "PreflightDiskSpace" && e.Place == "Nodes[1].InstallRoot");
        Assert.Contains(result.Errors, e => e.Check == "PreflightArchiveChecksum" && e.Place == "Archive.Sha256");
    }

    [Fact]
    public async Task Capacity_with_one_node_out_is_checked()
    {
        foreach (var n in _f.World.Nodes) n.ActiveUsers = 400;
        var data = _f.ProfileData(To);
        data["MaxUsersPerNode"] = 500;
        var f = await RefusedWith("PreflightCapacity", ClusterProfileReader.Read(data, "prod.psd1"));
        Assert.Contains("1200 active users", f.Message);
    }

    [Fact]
    public async Task An_upgrade_this_tool_did_not_start_is_detected()
    {
        _f.World.StartUpgradeMode(); // someone else, in the UI

        var result = await Preflight(resume: true);

        var f = Assert.Single(result.Errors);
        Assert.Equal("PreflightUpgradeNotOurs", f.Check);
        Assert.Contains("an upgrade is in progress that the journal has no run of", f.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("-Adopt", f.Message, StringComparison.Ordinal);
        var ex = await Assert.ThrowsAsync<BbException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, resume: true), CancellationToken.None));
        Assert.Equal("PreflightUpgradeNotOurs", ex.ErrorId);
        Assert.Equal(new[] { "cluster:start" }, _f.World.Operations);
    }

    [Fact]
    public async Task A_mixed_cluster_with_an_error_node_started_elsewhere_is_refused()
    {
        _f.World.StartUpgradeMode();
        _f.World["node-1"].ForceError = true;
        Assert.Equal(ClusterState.MIXED, _f.World.Cluster().State);

        var result = await Preflight();

        var f = result.Errors.First(e => e.Check == "PreflightUpgradeNotOurs");
        Assert.Contains("MIXED", f.Message);
        Assert.Contains(result.Errors, e => e.Check == "PreflightNodeNotActive" && e.Target == "node-1");
    }

    [Fact]
    public async Task Resume_without_an_unfinished_run_says_a_fresh_run_starts()
    {
        var result = await Preflight(resume: true);
        Assert.True(result.Passed);
        Assert.Null(result.AdoptedRun);
        Assert.Contains(result.Findings, f => f.Check == "PreflightNothingToResume");
    }

    [Fact]
    public async Task Changing_the_target_in_the_middle_of_an_upgrade_is_refused()
    {
        _f.World["node-2"].FailStartOnVersion = To;
        await Assert.ThrowsAsync<BitbucketZdu.Core.Upgrade.Runner.UpgradeHaltedException>(() => _f.Runner().RunAsync(_f.Profile, Options(1), CancellationToken.None));

        var result = await Preflight(WithTarget("8.19.5"), resume: true);

        var f = Assert.Single(result.Errors, e => e.Check == "PreflightTargetChanged");
        Assert.Contains("Set TargetVersion back to 8.19.4", f.Message);
    }

    public void Dispose() => _f.Dispose();
}
