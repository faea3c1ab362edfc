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

    // The secret-bearing texts are built here, not in [InlineData]: a theory's arguments become the test's display name,
    // which test-result files record — and the build's secret scan rightly refuses any canary there.
    private static readonly IReadOnlyDictionary<string, string> SecretTexts = new Dictionary<string, string>
    {
        ["password in prose"] = "login with " + Canary.Password + " failed",
        ["token in prose"] = "token " + Canary.Token,
        ["Basic header"] = "Authorization: Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Canary.UserName + ":" + Canary.Password)),
        ["password in URL user info"] = "GET https://canary-admin:" + Canary.Password + "@host/rest/zdu/cluster",
        ["SAS signature"] = "GET https://host/blob?sv=2022&sig=" + Canary.Token + "&se=2030",
        ["Bearer header"] = "Authorization: Bearer " + Canary.Token,
    };

    public static IEnumerable<object[]> SecretCases => SecretTexts.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(SecretCases))]
    public void Removes_the_secret(string @case)
    {
        var scrubbed = ForCredential().Scrub(SecretTexts[@case]);
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
