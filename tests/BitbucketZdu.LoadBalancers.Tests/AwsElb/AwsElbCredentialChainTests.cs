using BitbucketZdu.Core;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>
/// Without a credential given, the AWS CLI's own chain finds the keys: a named profile from its config and credential
/// files, or an instance role through the instance metadata service (IMDSv2). The ELBv2 stub accepts only requests
/// signed with exactly those keys, so a passing call proves the chain was used.
/// </summary>
public sealed class AwsElbCredentialChainTests
{
    private const string T1 = "10.0.0.11:7990";
    private const string T2 = "10.0.0.12:7990";

    private static LoadBalancerDescription Describe(ElbStub stub, string cli, string? profile = null)
    {
        var d = new LoadBalancerDescription(LoadBalancerKind.AwsElb, new[] { ElbStub.Region }, stub.TargetGroupArn) { RequestTimeout = TimeSpan.FromSeconds(30) };
        d.Options["EndpointUrl"] = stub.Url;
        d.Options["CliPath"] = cli;
        if (profile is not null) d.Options["Profile"] = profile;
        return d;
    }

    [Fact]
    public async Task A_named_profile_from_the_clis_config_and_credentials_files_signs_the_requests()
    {
        using var stub = new ElbStub(Canary.Password, T1, T2);
        var dir = Path.Combine(Path.GetTempPath(), "bbzdu-awsprofile-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "config"), "[profile bbzdu-ops]\nregion = us-east-1\noutput = text\n");
            File.WriteAllText(Path.Combine(dir, "credentials"), $"[bbzdu-ops]\naws_access_key_id = {ElbStub.AccessKeyId}\naws_secret_access_key = {Canary.Password}\n");
            var cli = AwsCli.Wrapper(new Dictionary<string, string>
            {
                ["AWS_CONFIG_FILE"] = Path.Combine(dir, "config"), ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(dir, "credentials"),
            }, clearKeys: true);

            // The profile's region and output format do not override what the provider asks for (--region, --output json).
            using (var lb = LoadBalancerFactory.Create(Describe(stub, cli, "bbzdu-ops")))
                Assert.Equal(new[] { T1, T2 }, (await lb.GetMembersAsync(CancellationToken.None)).Select(m => m.Name).OrderBy(n => n));
            Assert.All(stub.AllRequests, r => Assert.Contains("Credential=" + ElbStub.AccessKeyId + "/", r, StringComparison.Ordinal));

            using (var lb = LoadBalancerFactory.Create(Describe(stub, cli, "nope")))
            {
                var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
                Assert.Equal("AwsInvalidProfile", ex.ErrorId);
                Assert.Contains("The config profile (nope) could not be found", ex.Message);
            }
            // No profile named, none by default, no keys in the environment: the CLI finds nothing and says so.
            using (var lb = LoadBalancerFactory.Create(Describe(stub, cli)))
            {
                var ex = await Assert.ThrowsAsync<BbException>(() => lb.GetMembersAsync(CancellationToken.None));
                Assert.Equal("LoadBalancerMissingCredential", ex.ErrorId);
                Assert.Contains("Unable to locate credentials", ex.Message);
                Canary.AssertAbsent(ex.Message, "the error");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_profile_and_a_credential_together_are_refused_because_the_cli_would_ignore_the_credential()
    {
        using var stub = new ElbStub(Canary.Password, T1, T2);
        var d = Describe(stub, AwsCli.Isolated, "bbzdu-ops");
        (d.UserName, d.Password) = (ElbStub.AccessKeyId, Canary.Secure(Canary.Password));
        Assert.Equal("LoadBalancerCredentialNotUsed", Assert.Throws<BbException>(() => LoadBalancerFactory.Create(d)).ErrorId);
    }

    [Fact]
    public async Task An_instance_role_from_imdsv2_signs_the_requests_with_its_temporary_keys_and_session_token()
    {
        const string roleToken = "IQoJb3JpZ2luX2VjEROLESESSIONTOKEN";
        using var imds = new ImdsStub(Canary.Password, roleToken);
        using var stub = new ElbStub(Canary.Password, T1, T2) { KeyId = ImdsStub.KeyId, SessionToken = roleToken };
        var cli = AwsCli.Wrapper(new Dictionary<string, string>
        {
            ["AWS_EC2_METADATA_DISABLED"] = "false", ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.Url,
        }, clearKeys: true);
        using var lb = LoadBalancerFactory.Create(Describe(stub, cli));

        var members = await lb.GetMembersAsync(CancellationToken.None);

        Assert.Equal(new[] { T1, T2 }, members.Select(m => m.Name).OrderBy(n => n));
        Assert.Contains("PUT /latest/api/token (token: no)", imds.Log);
        Assert.Contains($"GET /latest/meta-data/iam/security-credentials/{ImdsStub.Role} (token: yes)", imds.Log);
        Assert.DoesNotContain(imds.Log, l => l.StartsWith("GET", StringComparison.Ordinal) && l.EndsWith("(token: no)", StringComparison.Ordinal));
        Assert.All(stub.AllRequests, r => Assert.Contains("Credential=" + ImdsStub.KeyId + "/", r, StringComparison.Ordinal));
        Canary.AssertAbsent(string.Join("\n", stub.AllRequests), "the requests");
    }
}
