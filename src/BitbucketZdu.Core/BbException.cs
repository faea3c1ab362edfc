using System;

namespace BitbucketZdu.Core
{
    /// <summary>
    /// Error categories the engine uses; the names match PowerShell's ErrorCategory so the cmdlet layer maps them by
    /// name without the engine depending on PowerShell.
    /// </summary>
    public enum BbErrorCategory
    {
        NotSpecified,
        InvalidArgument,
        InvalidData,
        InvalidOperation,
        InvalidResult,
        ObjectNotFound,
        ResourceUnavailable,
        ResourceExists,
        AuthenticationError,
        PermissionDenied,
        ConnectionError,
        OperationTimeout,
        OperationStopped,
        ProtocolError,
        SecurityError,
        LimitsExceeded,
        NotInstalled,
        DeviceError,
    }

    /// <summary>
    /// An engine failure with a stable ErrorId (named <c>&lt;Area&gt;&lt;Reason&gt;</c>, e.g. <c>ZduInvalidState</c>) that
    /// scripts can match on, and a message that says what happened and what to do. Never carries a secret.
    /// </summary>
    public class BbException : Exception
    {
        public BbException(string errorId, BbErrorCategory category, string message, object? target = null, Exception? inner = null)
            : base(message, inner)
        {
            ErrorId = errorId;
            Category = category;
            Target = target;
        }

        public string ErrorId { get; }
        public BbErrorCategory Category { get; }
        public object? Target { get; }

        /// <summary>
        /// The next step, where the engine knows it (check the credential, run a command, fix a profile entry): the
        /// cmdlet layer puts it in the ErrorRecord's <c>ErrorDetails.RecommendedAction</c>. Null when there is none to give.
        /// </summary>
        public string? RecommendedAction { get; set; }
    }
}
