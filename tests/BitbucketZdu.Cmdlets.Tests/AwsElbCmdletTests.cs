using System.Management.Automation;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>The AwsElb kind as users meet it: New-BbLoadBalancer and the profile template, from its descriptor.</summary>
public sealed class AwsElbCmdletTests : IDisposable
{
    private readonly PowerShellHost _ps = new();
    private const string Arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/bitbucket-http/73e2d6bc24d8a067";

    [Fact]
    public void New_describes_a_target_group_with_its_settings_and_refuses_a_wrong_region_or_arn()
    {
        var vars = new Dictionary<string, object?> { ["c"] = new PSCredential("AKIAIOSFODNN7EXAMPLE", Canary.Secure(Canary.Password)), ["arn"] = Arn };
        var r = _ps.Run("$elb = New-BbLoadBalancer -Kind AwsElb -Endpoint eu-west-1 -Backend $arn -ApiCredential $c "
            + "-Setting @{ EndpointUrl = 'https://vpce-1.elasticloadbalancing.eu-west-1.vpce.amazonaws.com/'; Targets = 'i-0abc:7990, i-0def:7990' }; "
            + "$elb.Options['EndpointUrl']; $elb.Options['Targets']; $elb | Out-String", vars);
        Assert.Null(r.FirstError);
        Assert.Equal("https://vpce-1.elasticloadbalancing.eu-west-1.vpce.amazonaws.com/", r.Output[0].ToString());
        Assert.Equal("i-0abc:7990, i-0def:7990", r.Output[1].ToString());
        Canary.AssertAbsent(r.AllText, "the description");

        r = _ps.Run("New-BbLoadBalancer -Kind AwsElb -Endpoint https://elasticloadbalancing.eu-west-1.amazonaws.com -Backend $arn", vars);
        Assert.Equal("AwsInvalidRegion,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind AwsElb -Endpoint us-east-1 -Backend $arn", vars);
        Assert.Equal("AwsInvalidTargetGroup,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("New-BbLoadBalancer -Kind AwsElb -Endpoint eu-west-1 -Backend $arn -Setting @{ Targets = 'i-0abc' }", vars);
        Assert.Equal("AwsInvalidTarget,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        // With --profile the CLI ignores keys in its environment: a profile and a credential together are refused.
        r = _ps.Run("New-BbLoadBalancer -Kind AwsElb -Endpoint eu-west-1 -Backend $arn -ApiCredential $c -Setting @{ Profile = 'bitbucket-ops' }", vars);
        Assert.Equal("LoadBalancerCredentialNotUsed,BitbucketZdu.Cmdlets.NewBbLoadBalancerCommand", r.FirstError!.FullyQualifiedErrorId);
        r = _ps.Run("(New-BbLoadBalancer -Kind AwsElb -Endpoint eu-west-1 -Backend $arn -Setting @{ Profile = 'bitbucket-ops'; CliPath = '/usr/bin/aws' }).Options['Profile']", vars);
        Assert.Null(r.FirstError);
        Assert.Equal("bitbucket-ops", r.Output[0].ToString());
    }

    [Fact]
    public void The_profile_template_has_an_aws_elb_entry_with_its_settings()
    {
        var path = Path.Combine(Path.GetTempPath(), "bbzdu-tpl-" + Guid.NewGuid().ToString("N") + ".psd1");
        try
        {
            var r = _ps.Run("New-BbClusterProfile -Path $p -LoadBalancerKind AwsElb | Out-Null; Import-PowerShellDataFile $p", new Dictionary<string, object?> { ["p"] = path });
            Assert.Null(r.FirstError);
            var text = File.ReadAllText(path);
            Assert.Contains("Kind     = 'AwsElb'", text, StringComparison.Ordinal);
            Assert.Contains("targetgroup/", text, StringComparison.Ordinal);
            Assert.Contains("#   EndpointUrl", text, StringComparison.Ordinal);
            Assert.Contains("#   Targets", text, StringComparison.Ordinal);
            Assert.Contains("#   Profile", text, StringComparison.Ordinal);
            Assert.Contains("#   CliPath", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public void Dispose() => _ps.Dispose();
}
