using System;
using System.Collections.Generic;

namespace BitbucketZdu.Core.Api
{
    /// <summary>What went wrong talking to /rest/zdu, coarse enough for the cmdlet layer to pick an ErrorId and category.</summary>
    public enum ZduErrorKind
    {
        /// <summary>401: no or bad credentials.</summary>
        Unauthorized,
        /// <summary>403: not a system administrator, not clustered, XSRF refused.</summary>
        Forbidden,
        /// <summary>403 while using a bearer token: Bitbucket refuses HTTP access tokens on admin endpoints.</summary>
        TokenRefused,
        /// <summary>404: unknown node id, or no rolling-upgrade API at this URL.</summary>
        NotFound,
        /// <summary>409: the action is not allowed in the cluster's current state.</summary>
        InvalidState,
        /// <summary>5xx from the server.</summary>
        ServerError,
        /// <summary>A 2xx answer that is not the JSON we expect (SSO login page, proxy error page, another product).</summary>
        UnexpectedResponse,
        /// <summary>The server could not be reached (DNS, refused, reset, TLS failure).</summary>
        Unreachable,
        /// <summary>No answer within the deadline.</summary>
        Timeout,
        /// <summary>Any other HTTP status.</summary>
        Http,
        /// <summary>A 3xx answer (redirects are not followed): typically a single sign-on login or an http→https hop.</summary>
        Redirected,
        /// <summary>A state-changing POST failed ambiguously and the cluster could not be re-read to learn whether it took effect.</summary>
        OutcomeUnknown,
        /// <summary>The server's TLS certificate failed verification.</summary>
        CertificateUntrusted,
        /// <summary>The answer is larger than <see cref="ZduClientOptions.MaxResponseBytes"/>: not read further.</summary>
        ResponseTooLarge,
        /// <summary>407: the HTTP proxy wants credentials (or refused the ones given).</summary>
        ProxyAuthenticationRequired,
    }

    /// <summary>A failed rolling-upgrade API call. The message carries the URL and the server's own messages, never a credential.</summary>
    public sealed class ZduApiException : BbException
    {
        public ZduApiException(ZduErrorKind kind, string message, Uri? requestUri = null, int? statusCode = null,
            IReadOnlyList<string>? serverMessages = null, Exception? inner = null)
            : base("Zdu" + kind, CategoryOf(kind), message, requestUri, inner)
        {
            Kind = kind;
            RequestUri = requestUri;
            StatusCode = statusCode;
            ServerMessages = serverMessages ?? Array.Empty<string>();
            RecommendedAction = DefaultAction(kind);
        }

        /// <summary>The next step for each kind where there is one whatever the details (a translator may give a sharper one).</summary>
        private static string? DefaultAction(ZduErrorKind kind) => kind switch
        {
            ZduErrorKind.Unauthorized => ZduErrorTranslator.UnauthorizedAction,
            ZduErrorKind.Forbidden => "Use an account with the System Administrator global permission (Administration > Global permissions).",
            ZduErrorKind.TokenRefused => "Pass -Credential (Get-Credential) for a Bitbucket system administrator instead of -Token.",
            ZduErrorKind.Unreachable => "Check that Bitbucket answers at this URL from this machine (DNS, firewall, proxy: -Proxy), then run the command again.",
            ZduErrorKind.Timeout => "Check that Bitbucket is up and answers from this machine, or raise -TimeoutSec; then run the command again.",
            ZduErrorKind.CertificateUntrusted => "Pass the internal CA's certificate with -TrustedCertificatePath (or the profile's Tls.TrustedCertificatePath).",
            ZduErrorKind.ProxyAuthenticationRequired => "Pass the proxy's credential with -ProxyCredential.",
            ZduErrorKind.Redirected => "Use Bitbucket's base URL (with its context path) that answers the REST API directly.",
            _ => null,
        };

        public ZduErrorKind Kind { get; }
        public Uri? RequestUri { get; }
        public int? StatusCode { get; }
        /// <summary>
        /// True when Bitbucket refused the credential or its rights (401, 403, a refused token): permanent until the admin
        /// fixes the credential, so it is never retried, and a run stops at the first one. Every further attempt with a
        /// wrong password counts towards the account's CAPTCHA lock-out.
        /// </summary>
        public bool CredentialsRefused => Kind == ZduErrorKind.Unauthorized || Kind == ZduErrorKind.Forbidden || Kind == ZduErrorKind.TokenRefused;

        /// <summary>Messages from the server's error body (<c>errors[].message</c> or <c>message</c>).</summary>
        public IReadOnlyList<string> ServerMessages { get; }

        /// <summary>The cluster as re-read after the failure (409 explanation, POST reconciliation); null when not re-read.</summary>
        public ZduCluster? Cluster { get; internal set; }

        /// <summary>True when a POST failed in a way that may still have changed the cluster (timeout, reset, 502/503/504).</summary>
        internal bool Ambiguous { get; set; }

        /// <summary>Where a 3xx answer pointed (query removed).</summary>
        public Uri? RedirectLocation { get; internal set; }

        private static BbErrorCategory CategoryOf(ZduErrorKind kind) => kind switch
        {
            ZduErrorKind.Unauthorized => BbErrorCategory.AuthenticationError,
            ZduErrorKind.ProxyAuthenticationRequired => BbErrorCategory.AuthenticationError,
            ZduErrorKind.Forbidden => BbErrorCategory.PermissionDenied,
            ZduErrorKind.TokenRefused => BbErrorCategory.PermissionDenied,
            ZduErrorKind.NotFound => BbErrorCategory.ObjectNotFound,
            ZduErrorKind.InvalidState => BbErrorCategory.InvalidOperation,
            ZduErrorKind.ServerError => BbErrorCategory.ResourceUnavailable,
            ZduErrorKind.UnexpectedResponse => BbErrorCategory.InvalidResult,
            ZduErrorKind.Unreachable => BbErrorCategory.ConnectionError,
            ZduErrorKind.Timeout => BbErrorCategory.OperationTimeout,
            ZduErrorKind.Redirected => BbErrorCategory.InvalidResult,
            ZduErrorKind.OutcomeUnknown => BbErrorCategory.InvalidResult,
            ZduErrorKind.CertificateUntrusted => BbErrorCategory.SecurityError,
            ZduErrorKind.ResponseTooLarge => BbErrorCategory.InvalidResult,
            _ => BbErrorCategory.ProtocolError,
        };
    }
}
