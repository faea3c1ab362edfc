using System;
using System.Management.Automation;
using BitbucketZdu.Core;

namespace BitbucketZdu.Internal
{
    /// <summary>The one place where engine exceptions become ErrorRecords with stable ErrorIds and categories.</summary>
    public static class BbErrors
    {
        public static ErrorRecord FromException(Exception ex, object? target = null)
        {
            switch (ex)
            {
                case BbException bb:
                    return WithRecommendedAction(new ErrorRecord(bb, bb.ErrorId, Map(bb.Category), Readable(target ?? bb.Target)), bb);
                case TimeoutException:
                    return new ErrorRecord(ex, "BbTimeout", ErrorCategory.OperationTimeout, target);
                case ArgumentException:
                    return new ErrorRecord(ex, "BbInvalidArgument", ErrorCategory.InvalidArgument, target);
                case UnauthorizedAccessException:
                    return new ErrorRecord(ex, "BbAccessDenied", ErrorCategory.PermissionDenied, target);
                case System.IO.IOException:
                    return new ErrorRecord(ex, "BbIOError", ErrorCategory.WriteError, target);
                case System.Net.Http.HttpRequestException:
                    return new ErrorRecord(ex, "BbConnectionError", ErrorCategory.ConnectionError, target);
                default:
                    return new ErrorRecord(ex, "BbUnexpectedError", ErrorCategory.NotSpecified, target);
            }
        }

        /// <summary>The engine's next step (<see cref="BbException.RecommendedAction"/>) as ErrorDetails.RecommendedAction; the message stays the exception's.</summary>
        public static ErrorRecord WithRecommendedAction(ErrorRecord record, BbException ex)
        {
            if (!string.IsNullOrEmpty(ex.RecommendedAction))
                record.ErrorDetails = new ErrorDetails(ex.Message) { RecommendedAction = ex.RecommendedAction };
            return record;
        }

        /// <summary>
        /// A target a user can read in <c>$Error[0].TargetObject</c>: the cluster URL, a node name, a profile path. Engine
        /// objects that have no readable form of their own (a cluster read from the API) are not targets.
        /// </summary>
        public static object? Readable(object? target) => target is Core.Api.ZduCluster ? null : target;

        public static ErrorCategory Map(BbErrorCategory category) =>
            Enum.TryParse<ErrorCategory>(category.ToString(), out var mapped) ? mapped : ErrorCategory.NotSpecified;
    }
}
