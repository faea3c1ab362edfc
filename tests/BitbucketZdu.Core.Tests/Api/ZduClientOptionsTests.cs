using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Core.Tests.Api;

public class ZduClientOptionsTests
{
    private static readonly ZduCredential Cred = ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password));

    [Theory]
    [InlineData("https://bb.example.com", "https://bb.example.com/")]
    [InlineData("https://host/bitbucket", "https://host/bitbucket/")]
    [InlineData("https://host/bitbucket/", "https://host/bitbucket/")]
    [InlineData("https://host/bitbucket/rest/zdu/cluster", "https://host/bitbucket/")]
    public void Base_url_keeps_the_context_path(string given, string expected)
    {
        Assert.Equal(expected, new ZduClientOptions(new Uri(given), Cred).BaseUri.ToString());
    }

    [Theory]
    [InlineData("ftp://host/")]
    [InlineData("https://host/?x=1")]
    [InlineData("https://user:pw@host/")]
    public void Bad_base_urls_are_refused_with_a_reason(string given)
    {
        var ex = Assert.Throws<ArgumentException>(() => new ZduClientOptions(new Uri(given), Cred));
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }

    [Fact]
    public void Credential_text_never_shows_the_secret()
    {
        Canary.AssertAbsent(Cred.ToString(), "ZduCredential.ToString");
        Canary.AssertAbsent(ZduCredential.Bearer(Canary.Secure(Canary.Token)).ToString(), "ZduCredential.ToString");
    }
}
