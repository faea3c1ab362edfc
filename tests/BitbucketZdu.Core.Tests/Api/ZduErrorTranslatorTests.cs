using System.Net;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>What a refused credential says and recommends (issue 18: one login attempt, the CAPTCHA lock-out).</summary>
public sealed class ZduErrorTranslatorTests
{
    private static readonly Uri Cluster = new("https://bitbucket.example.com/rest/zdu/cluster");

    private static ZduApiException Translate(int status, string body) =>
        ZduErrorTranslator.FromResponse(HttpMethod.Get, Cluster, new HttpResponseMessage((HttpStatusCode)status), body, usedBearerToken: false);

    [Fact]
    public void A_wrong_password_says_to_check_it_and_warns_of_the_CAPTCHA_without_retrying()
    {
        var ex = Translate(401, """{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}""");

        Assert.Equal("ZduUnauthorized", ex.ErrorId);
        Assert.Equal(BbErrorCategory.AuthenticationError, ex.Category);
        Assert.True(ex.CredentialsRefused);
        Assert.Contains("Check the user name and password", ex.Message, StringComparison.Ordinal);
        Assert.Contains("CAPTCHA", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Do not retry", ex.RecommendedAction, StringComparison.Ordinal);
        Assert.Contains("Clear CAPTCHA", ex.RecommendedAction, StringComparison.Ordinal);
    }

    /// <summary>
    /// Bitbucket's CaptchaRequiredAuthenticationException (javadoc: the password was entered incorrectly too many times
    /// in succession). The body is modelled on the errors[] shape of the 401 above; not captured from a real server.
    /// </summary>
    [Fact]
    public void An_account_behind_a_CAPTCHA_is_told_how_to_clear_it()
    {
        var ex = Translate(401, """{"errors":[{"context":null,"message":"CAPTCHA required.","exceptionName":"com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException"}]}""");

        Assert.Equal("ZduUnauthorized", ex.ErrorId);
        Assert.Contains("requires a CAPTCHA for this account", ex.Message, StringComparison.Ordinal);
        Assert.Contains("answer the CAPTCHA", ex.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public void A_user_who_is_not_a_system_administrator_is_refused_with_ZduForbidden_and_told_which_permission()
    {
        var ex = Translate(403, """{"status-code":403,"message":"Client must be authenticated as a system administrator to access this resource."}""");

        Assert.Equal("ZduForbidden", ex.ErrorId);
        Assert.True(ex.CredentialsRefused);
        Assert.Contains("System Administrator", ex.RecommendedAction, StringComparison.Ordinal);
    }
}
