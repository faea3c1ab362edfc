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
        }

        public ZduErrorKind Kind { get; }
        public Uri? RequestUri { get; }
        public int? StatusCode { get; }
        /// <summary>Messages from the server's error body (<c>errors[].message</c> or <c>message</c>).</summary>
        public IReadOnlyList<string> ServerMessages { get; }

        private static BbErrorCategory CategoryOf(ZduErrorKind kind) => kind switch
        {
            ZduErrorKind.Unauthorized => BbErrorCategory.AuthenticationError,
            ZduErrorKind.Forbidden => BbErrorCategory.PermissionDenied,
            ZduErrorKind.TokenRefused => BbErrorCategory.PermissionDenied,
            ZduErrorKind.NotFound => BbErrorCategory.ObjectNotFound,
            ZduErrorKind.InvalidState => BbErrorCategory.InvalidOperation,
            ZduErrorKind.ServerError => BbErrorCategory.ResourceUnavailable,
            ZduErrorKind.UnexpectedResponse => BbErrorCategory.InvalidResult,
            ZduErrorKind.Unreachable => BbErrorCategory.ConnectionError,
            ZduErrorKind.Timeout => BbErrorCategory.OperationTimeout,
            _ => BbErrorCategory.ProtocolError,
        };
    }
}
