using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.F5BigIp;

public sealed class F5BigIpTests : IDisposable
{
    private readonly F5Stub _stub = new();

    private static LoadBalancerDescription Describe(string backend, params F5Stub[] units) =>
        new(LoadBalancerKind.F5BigIp, units.Select(u => u.Url), backend)
        {
            RequestTimeout = TimeSpan.FromSeconds(5), UserName = "f5ops", Password = Canary.Secure(Canary.Password),
        };

    private LoadBalancerDescription Describe() => Describe("bitbucket", _stub);

    private static LoadBalancerOptions Fast() => new() { DrainTimeout = TimeSpan.FromSeconds(10), HealthTimeout = TimeSpan.FromSeconds(10), PollInterval = TimeSpan.FromMilliseconds(20) };

    public void Dispose() => _stub.Dispose();

    [Fact]
    public async Task Remove_disables_waits_for_connections_to_end_then_forces_offline_and_add_waits_for_the_monitor()
    {
        var calls = new List<LoadBalancerCallRecord>();
        using var lb = LoadBalancerFactory.Create(Describe());
        var controller = new LoadBalancerController(lb);
        var host = new TestHost();
        LoadBalancerChangeResult removed;
        using (LoadBalancerDiagnostics.ReportTo(r => { lock (calls) calls.Add(r); }))
            removed = await controller.RemoveAsync("10.0.0.11:7990", Fast(), host, CancellationToken.None);

        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.Equal(0, removed.ConnectionsCut);
        Assert.True(removed.ActiveAtDrainStart >= 1, "the drain saw the open connections");
        Assert.Equal(new[]
        {
            "10.0.0.11:7990 {\"session\":\"user-disabled\"}",
            "10.0.0.11:7990 {\"session\":\"user-disabled\",\"state\":\"user-down\"}",
        }, _stub.Patches);
        Assert.Equal(0, _stub.Members[0].CurConns);
        Assert.Equal("user-down", _stub.Members[0].State);

        var added = await controller.AddAsync("10.0.0.11:7990", Fast(), host, CancellationToken.None);
        Assert.Equal(MemberAdminState.Ready, added.State);
        Assert.Equal(MemberHealth.Up, added.Health);
        Assert.Equal("10.0.0.11:7990 {\"session\":\"user-enabled\",\"state\":\"user-up\"}", _stub.Patches.Last());
        Assert.Equal(("monitor-enabled", "up"), (_stub.Members[0].Session, _stub.Members[0].State));
        Assert.Equal(1, _stub.Logins); // one token for the whole change

        Canary.AssertAbsent(host.AllText, "the host messages");
        Canary.AssertAbsent(string.Join("\n", calls.Select(c => c.ToString())), "the call records");
        Canary.AssertAbsent(string.Join("\n", _stub.AllRequests.Where(r => !r.StartsWith("POST /mgmt/shared/authn/login", StringComparison.Ordinal))), "requests other than the login");
        Assert.All(_stub.AllRequests.Where(r => !r.StartsWith("POST /mgmt/shared/authn/login", StringComparison.Ordinal)),
            r => Assert.Contains("X-F5-Auth-Token=TOKEN", r, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task A_revoked_or_expired_token_is_renewed_by_logging_in_again()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
        _stub.RevokeTokens();
        Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);
        Assert.Equal(2, _stub.Logins);

        _stub.TokenSeconds = 10; // expires within the 30 s margin: renewed before use, without a 401 first
        _stub.RevokeTokens();
        await lb.GetMembersAsync(CancellationToken.None);
        var before = _stub.Logins;
        await lb.GetMembersAsync(CancellationToken.None);
        Assert.Equal(before + 1, _stub.Logins);
    }

    [Fact]
    public async Task Wrong_password_unknown_pool_and_unknown_member_are_clear_errors_and_change_nothing()
    {
        var wrong = Describe();
        wrong.Password = Canary.Secure("wrong-password");
        using (var lb = LoadBalancerFactory.Create(wrong))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.11:7990", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("F5AuthenticationFailed", ex.ErrorId);
            Assert.Contains("f5ops", ex.Message, StringComparison.Ordinal);
            Canary.AssertAbsent(ex.Message, "the error");
        }
        using (var lb = LoadBalancerFactory.Create(Describe("/Common/no-such-pool", _stub)))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("LoadBalancerBackendNotFound", ex.ErrorId);
        }
        using (var lb = LoadBalancerFactory.Create(Describe()))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => new LoadBalancerController(lb).RemoveAsync("10.0.0.99", Fast(), new TestHost(), CancellationToken.None));
            Assert.Equal("LoadBalancerMemberNotFound", ex.ErrorId);
        }
        Assert.Empty(_stub.Patches);
    }

    [Fact]
    public async Task A_pool_in_another_partition_is_addressed_as_tilde_partition_tilde_pool()
    {
        using var tenant = new F5Stub(partition: "Tenant1", pool: "bb-http");
        foreach (var backend in new[] { "/Tenant1/bb-http", "~Tenant1~bb-http" })
        {
            using var lb = LoadBalancerFactory.Create(Describe(backend, tenant));
            Assert.Equal(new[] { "10.0.0.11:7990", "10.0.0.12:7990" }, (await lb.GetMembersAsync(CancellationToken.None)).Select(m => m.Name));
        }
        var byPartitionSetting = Describe("bb-http", tenant);
        byPartitionSetting.Options["Partition"] = "Tenant1";
        using (var lb = LoadBalancerFactory.Create(byPartitionSetting))
            await new LoadBalancerController(lb).RemoveAsync("10.0.0.12:7990", Fast(), new TestHost(), CancellationToken.None);
        Assert.Contains(tenant.AllRequests, r => r.StartsWith("PATCH /mgmt/tm/ltm/pool/~Tenant1~bb-http/members/~Tenant1~10.0.0.12:7990 ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_HA_pair_is_changed_on_its_active_unit_or_on_both_when_they_do_not_sync()
    {
        using var standby = new F5Stub { Status = "STANDBY" };
        using (var lb = LoadBalancerFactory.Create(Describe("bitbucket", standby, _stub)))
            await new LoadBalancerController(lb).RemoveAsync("10.0.0.11:7990", Fast(), new TestHost(), CancellationToken.None);
        Assert.Empty(standby.Patches);
        Assert.Equal(2, _stub.Patches.Count);

        using var active = new F5Stub();
        using var other = new F5Stub { Status = "STANDBY" };
        var unsynced = Describe("bitbucket", active, other);
        unsynced.Options["ConfigSync"] = "false";
        using (var lb = LoadBalancerFactory.Create(unsynced))
            await new LoadBalancerController(lb).RemoveAsync("10.0.0.12:7990", Fast(), new TestHost(), CancellationToken.None);
        Assert.Equal(2, other.Patches.Count(p => p.StartsWith("10.0.0.12:7990", StringComparison.Ordinal)));
        Assert.Equal(2, active.Patches.Count(p => p.StartsWith("10.0.0.12:7990", StringComparison.Ordinal)));
        Assert.Equal(0, other.Members[1].CurConns); // the drain waited for the connections of both units

        using var neither = new F5Stub { Status = "STANDBY" };
        using (var lb = LoadBalancerFactory.Create(Describe("bitbucket", neither, standby)))
        {
            var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
            Assert.Equal("F5NoActiveUnit", ex.ErrorId);
        }
    }

    [Fact]
    public async Task The_devices_certificate_must_chain_to_the_given_ca()
    {
        using var ca = TestCertificates.NewCa("BIG-IP Test CA");
        using var otherCa = TestCertificates.NewCa("Other Test CA");
        var leaf = TestCertificates.NewServer(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29));
        using var tls = new F5Stub(certificate: leaf);
        Assert.StartsWith("https://localhost:", tls.Url, StringComparison.Ordinal);
        var dir = Directory.CreateTempSubdirectory("bbzdu-f5ca-").FullName;
        try
        {
            string Pem(System.Security.Cryptography.X509Certificates.X509Certificate2 c, string name)
            {
                var path = Path.Combine(dir, name);
                File.WriteAllText(path, c.ExportCertificatePem());
                return path;
            }
            var right = Describe("bitbucket", tls);
            right.Options["CaCertificateFile"] = Pem(ca, "ca.pem");
            using (var lb = LoadBalancerFactory.Create(right))
                Assert.Equal(2, (await lb.GetMembersAsync(CancellationToken.None)).Count);

            var wrong = Describe("bitbucket", tls);
            wrong.Options["CaCertificateFile"] = Pem(otherCa, "other.pem");
            using (var lb = LoadBalancerFactory.Create(wrong))
                Assert.Equal("LoadBalancerUnreachable", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
            using (var lb = LoadBalancerFactory.Create(Describe("bitbucket", tls))) // no CA given: the system's store, which does not trust it
                Assert.Equal("LoadBalancerUnreachable", (await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None))).ErrorId);
            Assert.Equal(1, tls.Logins); // only the right CA got as far as a login
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_bad_endpoint_or_missing_ca_file_is_refused_when_described()
    {
        var bad = new LoadBalancerDescription(LoadBalancerKind.F5BigIp, new[] { "bigip1:443" }, "bitbucket");
        Assert.Equal("F5InvalidEndpoint", Assert.Throws<BbException>(() => LoadBalancerFactory.Create(bad)).ErrorId);
        var ca = Describe();
        ca.Options["CaCertificateFile"] = Path.Combine(Path.GetTempPath(), "no-such-ca-" + Guid.NewGuid().ToString("N") + ".pem");
        Assert.Equal("F5CaCertificateUnreadable", Assert.Throws<BbException>(() => LoadBalancerFactory.Create(ca)).ErrorId);
    }
}
