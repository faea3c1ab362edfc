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
                    return new ErrorRecord(bb, bb.ErrorId, Map(bb.Category), target ?? bb.Target);
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

        public static ErrorCategory Map(BbErrorCategory category) =>
            Enum.TryParse<ErrorCategory>(category.ToString(), out var mapped) ? mapped : ErrorCategory.NotSpecified;
    }
}
