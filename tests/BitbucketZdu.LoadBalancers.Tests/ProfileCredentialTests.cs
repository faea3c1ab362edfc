using System.Collections;
using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.LoadBalancers.Tests.Apache;
using BitbucketZdu.LoadBalancers.Tests.AzureAppGateway;
using BitbucketZdu.LoadBalancers.Tests.NginxPlus;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests;

/// <summary>Apache whose balancer-manager asks for HTTP Basic (a real httpd with mod_auth_basic).</summary>
public sealed class ApacheBasicAuthFixture : ApacheFixture
{
    protected override string? BasicUser => "lbadmin";
    protected override string? BasicPassword => Canary.Password;
}

/// <summary>
/// A profile-driven rotation (what Invoke-BbRollingUpgrade -ProfilePath builds) reaches the kinds that need a credential:
/// the credential comes by load-balancer name (-LoadBalancerCredential), never from the profile.
/// </summary>
public sealed class ProfileCredentialTests : IClassFixture<ApacheBasicAuthFixture>, IDisposable
{
    private readonly ApacheBasicAuthFixture _apache;
    private readonly NginxPlusStub _plus = new() { BasicAuth = "lbadmin:" + Canary.Password };
    private readonly ArmStub _arm = new();

    public ProfileCredentialTests(ApacheBasicAuthFixture apache) => _apache = apache;

    public void Dispose()
    {
        _plus.Dispose();
        _arm.Dispose();
    }

    internal static ClusterProfile Profile(string kind, Hashtable settings, string member1, string member2) =>
        ClusterProfileReader.Read(new Hashtable
        {
            ["Name"] = "prod",
            ["BaseUrl"] = "https://bitbucket.example.com",
            ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Url"] = "https://example.com/bb.tar.gz", ["Sha256"] = new string('a', 64) },
            ["LoadBalancers"] = new object[] { new Hashtable { ["Name"] = "lb1", ["Kind"] = kind, ["Settings"] = settings } },
            ["Nodes"] = new object[]
            {
                new Hashtable { ["Name"] = "node-1", ["Url"] = "http://127.0.0.1:7990/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/bb", ["Member"] = member1 },
                new Hashtable { ["Name"] = "node-2", ["Url"] = "http://127.0.0.1:7991/", ["Remoting"] = "local", ["InstallRoot"] = "/opt/bb", ["Member"] = member2 },
            },
            ["Timeouts"] = new Hashtable { ["DrainSeconds"] = 20, ["HealthySeconds"] = 20, ["FirstPollMilliseconds"] = 20, ["MaxPollMilliseconds"] = 200 },
        });

    private static Dictionary<string, LoadBalancerCredential> Cred(string user, string secret) =>
        new(StringComparer.OrdinalIgnoreCase) { ["LB1"] = new LoadBalancerCredential(user, Canary.Secure(secret)) };

    /// <summary>Without the credential the probe fails with the kind's own refusal; with it the node goes out and back.</summary>
    private static async Task OutAndBackAsync(ClusterProfile profile, IReadOnlyDictionary<string, LoadBalancerCredential> credential, string refusal)
    {
        var node = profile.Nodes[0];
        using (var bare = new LoadBalancerRotation(profile))
        {
            var denied = await bare.ProbeAsync(node, CancellationToken.None);
            Assert.False(denied.Reachable);
            Assert.Contains(refusal, denied.Problem, StringComparison.OrdinalIgnoreCase);
            Canary.AssertAbsent(denied.Problem!, "the probe's problem");
        }
        using var rotation = new LoadBalancerRotation(profile, credentials: credential);
        var probe = await rotation.ProbeAsync(node, CancellationToken.None);
        Assert.True(probe.Reachable, probe.Problem);
        Assert.True(probe.MemberFound, probe.Problem);
        Assert.Equal(RotationStateIn, probe.State.ToString());
        await rotation.TakeOutAsync(node, TimeSpan.FromSeconds(20), CancellationToken.None);
        Assert.Equal("OutOfRotation", (await rotation.GetStateAsync(node, CancellationToken.None)).ToString());
        await rotation.PutBackAsync(node, TimeSpan.FromSeconds(20), CancellationToken.None);
        Assert.Equal(RotationStateIn, (await rotation.GetStateAsync(node, CancellationToken.None)).ToString());
        foreach (var change in rotation.Changes) Canary.AssertAbsent(change.ToString() + " " + change.Note, "the change results");
    }

    private const string RotationStateIn = "InRotation";

    [Fact]
    public async Task Apache_behind_basic_auth_works_from_a_profile_with_the_credential_by_name()
    {
        await _apache.ResetAsync();
        var profile = Profile("Apache", new Hashtable { ["Endpoint"] = _apache.Manager, ["Backend"] = "bitbucket" }, _apache.Member1, _apache.Member2);
        await OutAndBackAsync(profile, Cred("lbadmin", Canary.Password), "401");
    }

    [Fact]
    public async Task Nginx_plus_behind_basic_auth_works_from_a_profile_with_the_credential_by_name()
    {
        var profile = Profile("NginxPlus", new Hashtable { ["Endpoint"] = _plus.ApiBase, ["Backend"] = "bitbucket", ["TimeoutSec"] = 5 }, "10.0.0.11:7990", "10.0.0.12:7990");
        await OutAndBackAsync(profile, Cred("lbadmin", Canary.Password), "401");
    }

    [Fact]
    public async Task F5_big_ip_works_from_a_profile_with_its_user_by_name()
    {
        using var f5 = new BitbucketZdu.LoadBalancers.Tests.F5BigIp.F5Stub(partition: "Tenant1");
        var profile = Profile("F5BigIp", new Hashtable { ["Endpoint"] = f5.Url, ["Backend"] = "bitbucket", ["Partition"] = "Tenant1", ["TimeoutSec"] = 5 }, "10.0.0.11:7990", "10.0.0.12:7990");
        await OutAndBackAsync(profile, Cred("f5ops", Canary.Password), "user name and password");
        Assert.Equal(1, f5.Logins);
        Assert.Contains(f5.Patches, p => p == "10.0.0.11:7990 {\"session\":\"user-disabled\",\"state\":\"user-down\"}");
    }

    [Fact]
    public async Task Aws_elb_access_keys_reach_a_profile_driven_rotation_through_the_clis_environment_and_only_sign_requests()
    {
        using var elb = new BitbucketZdu.LoadBalancers.Tests.AwsElb.ElbStub(Canary.Password, "10.0.0.11:7990", "10.0.0.12:7990");
        var profile = Profile("AwsElb", new Hashtable
        {
            ["Endpoint"] = BitbucketZdu.LoadBalancers.Tests.AwsElb.ElbStub.Region, ["Backend"] = elb.TargetGroupArn, ["EndpointUrl"] = elb.Url,
            ["Targets"] = "10.0.0.11:7990, 10.0.0.12:7990", ["TimeoutSec"] = 30, ["CliPath"] = BitbucketZdu.LoadBalancers.Tests.AwsElb.AwsCli.Isolated,
        }, "10.0.0.11:7990", "10.0.0.12:7990");
        // Without the credential (and no AWS_* variables in the test environment) the CLI's chain finds nothing and says so.
        if (Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID") is null)
            await OutAndBackAsync(profile, Cred(BitbucketZdu.LoadBalancers.Tests.AwsElb.ElbStub.AccessKeyId, Canary.Password), "Unable to locate credentials");
        Assert.Contains("DeregisterTargets", elb.Calls);
        Assert.Contains("RegisterTargets", elb.Calls);
        Canary.AssertAbsent(string.Join("\n", elb.AllRequests), "the requests");
    }

    [Fact]
    public async Task Azure_service_principal_secret_reaches_a_profile_driven_rotation()
    {
        var settings = new Hashtable
        {
            ["Endpoint"] = ArmStub.GatewayId, ["Backend"] = "bb-pool", ["Authentication"] = "ServicePrincipal", ["TenantId"] = "contoso-tenant",
            ["ClientId"] = "app-1", ["ManagementEndpoint"] = _arm.BaseUri.ToString(), ["AuthorityEndpoint"] = _arm.BaseUri.ToString(),
        };
        var profile = Profile("AzureAppGateway", settings, "10.0.0.11", "10.0.0.12");
        await OutAndBackAsync(profile, Cred("", Canary.Password), "client secret");
        Assert.Contains(_arm.Log, l => l == "POST /contoso-tenant/oauth2/v2.0/token");
        Canary.AssertAbsent(string.Join("\n", _arm.AllRequests.Where(r => !r.Contains("/oauth2/v2.0/token"))), "requests other than the token request");
    }
}

/// <summary>The descriptor registry and the profile mapper, without any server.</summary>
public sealed class LoadBalancerKindTests
{
    private static ClusterProfile Profile(string kind, Hashtable settings, string member1, string member2) =>
        ProfileCredentialTests.Profile(kind, settings, member1, member2);

    [Fact]
    public void A_credential_for_a_kind_that_takes_none_and_a_missing_one_are_refused_before_anything_is_created()
    {
        var haproxy = Profile("HAProxy", new Hashtable { ["Endpoint"] = "tcp://127.0.0.1:1", ["Backend"] = "bitbucket" }, "bitbucket/node-1", "bitbucket/node-2");
        var ex = Assert.Throws<BbException>(() => LoadBalancerProfileMapper.ToDescription(haproxy.LoadBalancers[0], new LoadBalancerCredential("u", Canary.Secure(Canary.Password))));
        Assert.Equal("LoadBalancerCredentialNotUsed", ex.ErrorId);

        var azure = Profile("AzureAppGateway", new Hashtable { ["Endpoint"] = ArmStub.GatewayId, ["Backend"] = "p", ["Authentication"] = "ServicePrincipal", ["TenantId"] = "t", ["ClientId"] = "c" }, "10.0.0.11", "10.0.0.12");
        ex = Assert.Throws<BbException>(() => LoadBalancerProfileMapper.ToDescription(azure.LoadBalancers[0]));
        Assert.Equal("LoadBalancerMissingCredential", ex.ErrorId);
        Assert.Contains("-LoadBalancerCredential", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_kind_has_one_descriptor_and_a_profile_setting_unknown_to_the_kind_is_refused()
    {
        Assert.Equal(Enum.GetValues<LoadBalancerKind>(), LoadBalancerKinds.All.Select(k => k.Kind));
        var ex = Assert.Throws<ProfileException>(() => Profile("HAProxy", new Hashtable { ["Endpoint"] = "tcp://127.0.0.1:1", ["Backend"] = "b", ["NginxCommand"] = "nginx", ["Password"] = "x" }, "a", "b"));
        Assert.Contains(ex.Issues, i => i.ErrorId == "ProfileUnknownKey" && i.Place == "LoadBalancers[0].Settings.NginxCommand");
        Assert.Contains(ex.Issues, i => i.ErrorId == "ProfileUnknownKey" && i.Place == "LoadBalancers[0].Settings.Password");
    }
}
