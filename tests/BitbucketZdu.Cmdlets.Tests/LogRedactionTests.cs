using System.Collections;
using System.Management.Automation;
using BitbucketZdu.Internal;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>What the -LogPath log scrubs from every text it writes (the Pester suite checks whole runs with canaries).</summary>
public sealed class LogRedactionTests
{
    private static Redactor ForCredential() => Redactor.ForParameters(new Hashtable
    {
        ["Credential"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
        ["Token"] = PSObject.AsPSObject(Canary.Secure(Canary.Token)),
    });

    [Theory]
    [InlineData("login with " + Canary.Password + " failed")]
    [InlineData("token " + Canary.Token)]
    [InlineData("Authorization: Basic Y2FuYXJ5LWFkbWluOkNhbmFyeS1QNHNzLTdmM2U5ZDJi")]
    [InlineData("GET https://canary-admin:" + Canary.Password + "@host/rest/zdu/cluster")]
    [InlineData("GET https://host/blob?sv=2022&sig=" + Canary.Token + "&se=2030")]
    [InlineData("Authorization: Bearer " + Canary.Token)]
    public void Removes_the_secret(string text)
    {
        var scrubbed = ForCredential().Scrub(text);
        Canary.AssertAbsent(scrubbed, "a scrubbed log line");
        Assert.Contains("***", scrubbed);
    }

    [Fact]
    public void Keeps_plain_text_readable()
    {
        const string text = "GET http://127.0.0.1:7990/rest/zdu/cluster -> 200 in 14 ms; node-1 ACTIVE 8.19.4";
        Assert.Equal(text, ForCredential().Scrub(text));
    }

    [Fact]
    public void Removes_the_basic_auth_form_of_a_bound_credential()
    {
        var basic = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Canary.UserName + ":" + Canary.Password));
        Canary.AssertAbsent(ForCredential().Scrub("header " + basic), "a scrubbed log line");
    }
}
