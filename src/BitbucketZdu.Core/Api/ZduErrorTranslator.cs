using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Core.Api
{
    /// <summary>Turns an HTTP failure from /rest/zdu into a <see cref="ZduApiException"/> with the server's own messages.</summary>
    internal static class ZduErrorTranslator
    {
        /// <summary>What a 407 means and what to do: the proxy between here and Bitbucket wants (other) credentials.</summary>
        internal static string ProxyAuthMessage(string prefix) =>
            $"{prefix} The HTTP proxy between this machine and Bitbucket requires authentication (407 Proxy Authentication Required), so the request never reached Bitbucket. "
            + "Pass the proxy's credential with -ProxyCredential (and its address with -Proxy, or Proxy = @{ Uri = ... } in the profile), or reach Bitbucket without that proxy (NO_PROXY).";

        public static ZduApiException FromResponse(HttpMethod method, Uri uri, HttpResponseMessage response, string body, bool usedBearerToken,
            string? notFoundHint = null, int attempts = 1)
        {
            var status = (int)response.StatusCode;
            var messages = ExtractMessages(body);
            var said = messages.Count > 0 ? " Server says: " + string.Join(" ", messages) : string.Empty;
            var after = attempts > 1 ? $" (after {attempts} attempts)" : string.Empty;
            var prefix = $"{method} {uri} returned {status} {response.ReasonPhrase}{after}.";
            switch (status)
            {
                case 401 when IsCaptchaRequired(body):
                    return new ZduApiException(ZduErrorKind.Unauthorized,
                        $"{prefix} Bitbucket requires a CAPTCHA for this account after too many failed logins, so it refuses its REST calls.{said}",
                        uri, status, messages) { RecommendedAction = CaptchaAction };
                case 401:
                    return new ZduApiException(ZduErrorKind.Unauthorized,
                        $"{prefix} Bitbucket did not accept the credentials. Check the user name and password of a system administrator before trying again: after a few failed logins Bitbucket asks for a CAPTCHA and refuses that account's REST calls.{said}",
                        uri, status, messages) { RecommendedAction = UnauthorizedAction };
                case 403 when usedBearerToken:
                    return new ZduApiException(ZduErrorKind.TokenRefused,
                        $"{prefix} Bitbucket Data Center does not accept HTTP access tokens on administrative endpoints such as /rest/zdu (BSERV-10482). Connect with -Credential for a system administrator instead.{said}",
                        uri, status, messages) { RecommendedAction = "Pass -Credential (Get-Credential) for a Bitbucket system administrator instead of -Token." };
                case 403:
                    return new ZduApiException(ZduErrorKind.Forbidden,
                        $"{prefix} The user must be a system administrator and Bitbucket must be a clustered Data Center installation.{said}",
                        uri, status, messages) { RecommendedAction = "Use an account with the System Administrator global permission (Administration > Global permissions)." };
                case 404:
                    return new ZduApiException(ZduErrorKind.NotFound,
                        $"{prefix} {notFoundHint ?? "Nothing is there: no Bitbucket rolling-upgrade API under this base URL (check -Uri and its context path)."}{said}",
                        uri, status, messages);
                case 407:
                    return new ZduApiException(ZduErrorKind.ProxyAuthenticationRequired, ProxyAuthMessage(prefix), uri, status, messages);
                case 409:
                    return new ZduApiException(ZduErrorKind.InvalidState,
                        $"{prefix} The cluster is not in a state that allows this action.{said}",
                        uri, status, messages);
                case >= 500:
                    return new ZduApiException(ZduErrorKind.ServerError,
                        $"{prefix} Bitbucket (or a proxy in front of it) failed; see the Bitbucket log (atlassian-bitbucket.log) on the node that answered.{said}",
                        uri, status, messages);
                default:
                    return new ZduApiException(ZduErrorKind.Http, $"{prefix}{said}", uri, status, messages);
            }
        }

        /// <summary>The next step after a 401: check the credential once, do not retry it in a loop.</summary>
        internal const string UnauthorizedAction =
            "Check the user name and password (a Bitbucket system administrator), then run the command once more. Do not retry in a loop: "
            + "after a few failed logins Bitbucket requires a CAPTCHA for the account and its REST calls fail until someone logs in as it in a browser and answers the CAPTCHA, "
            + "or an administrator clears it (Administration > Users > the user > Clear CAPTCHA).";

        /// <summary>The next step when the account is behind a CAPTCHA.</summary>
        internal const string CaptchaAction =
            "Log in to Bitbucket as this user in a browser and answer the CAPTCHA, or have another administrator clear it (Administration > Users > the user > Clear CAPTCHA), "
            + "then run the command once more with the right password.";

        /// <summary>Bitbucket's CaptchaRequiredAuthenticationException (the account must solve a CAPTCHA before it may log in again).</summary>
        private static bool IsCaptchaRequired(string body) => body.IndexOf("Captcha", StringComparison.OrdinalIgnoreCase) >= 0;

        public static ZduApiException Redirect(HttpMethod method, Uri uri, HttpResponseMessage response)
        {
            var status = (int)response.StatusCode;
            var location = response.Headers.Location;
            Uri? target = null;
            if (location is not null)
            {
                var absolute = location.IsAbsoluteUri ? location : new Uri(uri, location);
                // Only scheme, host and path: a login redirect's query may carry state we have no business printing.
                target = new Uri(absolute.GetLeftPart(UriPartial.Path));
            }
            string hint;
            if (target is null)
                hint = "The answer names no Location.";
            else if (target.Scheme == Uri.UriSchemeHttps && uri.Scheme == Uri.UriSchemeHttp && string.Equals(target.Host, uri.Host, StringComparison.OrdinalIgnoreCase))
                hint = $"It redirects to {target}: connect with the https URL.";
            else if (target.AbsolutePath.IndexOf("login", StringComparison.OrdinalIgnoreCase) >= 0 || !string.Equals(target.Host, uri.Host, StringComparison.OrdinalIgnoreCase))
                hint = $"It redirects to {target}: a single sign-on or login page, or another host. Redirects are not followed so that credentials never leave for another address; connect to a URL that answers the REST API directly (for example a node's own address) with a local system administrator.";
            else
                hint = $"It redirects to {target}: use Bitbucket's base URL (with its context path) as -Uri.";
            return new ZduApiException(ZduErrorKind.Redirected, $"{method} {uri} answered {status} {response.ReasonPhrase}. {hint}", uri, status)
            {
                RedirectLocation = target,
            };
        }

        public static ZduApiException UnexpectedBody(HttpMethod method, Uri uri, HttpResponseMessage response, string body, Exception parseError)
        {
            var type = response.Content?.Headers.ContentType?.MediaType ?? "no content type";
            var hint = LooksLikeHtml(body)
                ? " It looks like an HTML page: a single sign-on login page, a proxy error page, or not Bitbucket at this URL."
                : " (" + parseError.Message.TrimEnd('.') + ")";
            return new ZduApiException(ZduErrorKind.UnexpectedResponse,
                $"{method} {uri} answered {(int)response.StatusCode} with {type} that is not the rolling-upgrade JSON expected.{hint}",
                uri, (int)response.StatusCode, Array.Empty<string>(), parseError);
        }

        /// <summary>Reads Bitbucket's <c>errors[].message</c>, atlassian-rest's <c>message</c> (JSON or XML), or nothing.</summary>
        public static IReadOnlyList<string> ExtractMessages(string body)
        {
            if (string.IsNullOrWhiteSpace(body)) return Array.Empty<string>();
            var trimmed = body.TrimStart();
            if (trimmed.StartsWith("{", StringComparison.Ordinal))
            {
                try
                {
                    using var doc = JsonDocument.Parse(body);
                    var root = doc.RootElement;
                    var list = new List<string>();
                    if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var e in errors.EnumerateArray())
                            if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
                                list.Add(m.GetString()!);
                    }
                    if (list.Count == 0 && root.TryGetProperty("message", out var msg) && msg.ValueKind == JsonValueKind.String)
                        list.Add(msg.GetString()!);
                    return list;
                }
                catch (JsonException)
                {
                    return Array.Empty<string>();
                }
            }
            if (trimmed.StartsWith("<", StringComparison.Ordinal) && !LooksLikeHtml(body))
            {
                var m = Regex.Match(body, "<message>(.*?)</message>", RegexOptions.Singleline | RegexOptions.IgnoreCase);
                if (m.Success) return new[] { System.Net.WebUtility.HtmlDecode(m.Groups[1].Value.Trim()) };
            }
            return Array.Empty<string>();
        }

        private static bool LooksLikeHtml(string body) =>
            body.IndexOf("<html", StringComparison.OrdinalIgnoreCase) >= 0 || body.IndexOf("<!DOCTYPE html", StringComparison.OrdinalIgnoreCase) >= 0;
    }
}
