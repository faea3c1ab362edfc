namespace BitbucketZdu.Core.Hosting
{
    /// <summary>
    /// What the engine needs from whoever runs it (a cmdlet, a test, the demo): a place to say what it is doing,
    /// progress, and permission for changes. Implementations must be safe to call from any thread; the cmdlet host
    /// marshals every call onto the pipeline thread.
    /// </summary>
    public interface IOperationHost
    {
        void Verbose(string message);
        void Debug(string message);
        void Warning(string message);
        void Progress(OperationProgress progress);

        /// <summary>Asks whether to make a change (PowerShell's ShouldProcess: -WhatIf/-Confirm). False means skip it.</summary>
        bool ShouldProcess(string target, string action);
    }

    /// <summary>
    /// A host that can also carry information records (PowerShell's Write-Information). Optional so existing hosts stay
    /// as they are; <see cref="OperationHostExtensions.Inform"/> falls back to Verbose.
    /// </summary>
    public interface IInformationHost
    {
        void Information(string message, string[]? tags = null);
    }

    public static class OperationHostExtensions
    {
        /// <summary>What the engine found and will do (a takeover of an interrupted upgrade): information, or verbose.</summary>
        public static void Inform(this IOperationHost host, string message)
        {
            if (host is IInformationHost info) info.Information(message, new[] { "BitbucketZdu" });
            else host.Verbose(message);
        }
    }

    /// <summary>A progress report; PercentComplete -1 means unknown.</summary>
    public sealed class OperationProgress
    {
        public OperationProgress(int activityId, string activity, string status)
        {
            ActivityId = activityId;
            Activity = activity;
            Status = status;
        }

        public int ActivityId { get; }
        public int ParentActivityId { get; set; } = -1;
        public string Activity { get; }
        public string Status { get; }
        public string? CurrentOperation { get; set; }
        public int PercentComplete { get; set; } = -1;
        public int SecondsRemaining { get; set; } = -1;
        public bool Completed { get; set; }
    }

    /// <summary>A host that says nothing and allows every change: for tests and embedded use.</summary>
    public sealed class NullOperationHost : IOperationHost
    {
        public static readonly NullOperationHost Instance = new NullOperationHost();
        public void Verbose(string message) { }
        public void Debug(string message) { }
        public void Warning(string message) { }
        public void Progress(OperationProgress progress) { }
        public bool ShouldProcess(string target, string action) => true;
    }
}
