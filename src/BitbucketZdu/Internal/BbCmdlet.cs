using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// Base of every BitbucketZdu cmdlet: runs async engine work off the pipeline thread while pumping its output,
    /// progress and prompts back onto it, cancels on Ctrl+C (StopProcessing), and turns engine exceptions into
    /// ErrorRecords in one place.
    /// </summary>
    public abstract class BbCmdlet : PSCmdlet
    {
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();

        /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
        protected CancellationToken StopToken => _stopping.Token;

        protected override void StopProcessing() => _stopping.Cancel();

        protected override void EndProcessing()
        {
            base.EndProcessing();
        }

        /// <summary>Runs <paramref name="work"/> in the background and pumps its Write*/ShouldProcess calls here.</summary>
        protected T Run<T>(Func<PipelineBridge, CancellationToken, Task<T>> work)
        {
            var bridge = new PipelineBridge(this);
            var task = Task.Run(() => work(bridge, StopToken));
            task.ContinueWith(_ => bridge.Queue.CompleteAdding(), TaskScheduler.Default);
            foreach (var action in bridge.Queue.GetConsumingEnumerable())
                action();
            try
            {
                return task.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }

        protected void Run(Func<PipelineBridge, CancellationToken, Task> work) =>
            Run<bool>(async (bridge, ct) =>
            {
                await work(bridge, ct).ConfigureAwait(false);
                return true;
            });

        /// <summary>Runs work and turns an engine failure into a terminating error for this cmdlet.</summary>
        protected T RunOrThrow<T>(Func<PipelineBridge, CancellationToken, Task<T>> work, object? target = null)
        {
            try
            {
                return Run(work);
            }
            catch (Exception ex) when (IsEngineFailure(ex))
            {
                ThrowTerminatingError(BbErrors.FromException(ex, target));
                throw; // unreachable: ThrowTerminatingError always throws
            }
        }

        protected void RunOrThrow(Func<PipelineBridge, CancellationToken, Task> work, object? target = null) =>
            RunOrThrow<bool>(async (bridge, ct) =>
            {
                await work(bridge, ct).ConfigureAwait(false);
                return true;
            }, target);

        /// <summary>Runs work and reports an engine failure as a non-terminating error (for per-item pipeline work).</summary>
        protected bool RunOrWriteError(Func<PipelineBridge, CancellationToken, Task> work, object? target = null)
        {
            try
            {
                Run<bool>(async (bridge, ct) =>
                {
                    await work(bridge, ct).ConfigureAwait(false);
                    return true;
                });
                return true;
            }
            catch (Exception ex) when (IsEngineFailure(ex))
            {
                WriteError(BbErrors.FromException(ex, target));
                return false;
            }
        }

        protected void ThrowError(string errorId, ErrorCategory category, string message, object? target = null) =>
            ThrowTerminatingError(new ErrorRecord(new BbException(errorId, (BbErrorCategory)Enum.Parse(typeof(BbErrorCategory), category.ToString()), message, target), errorId, category, target));

        private static bool IsEngineFailure(Exception ex) =>
            ex is BbException || ex is TimeoutException || ex is ArgumentException || ex is System.IO.IOException
            || ex is UnauthorizedAccessException || ex is System.Net.Http.HttpRequestException || ex is InvalidOperationException;
    }
}
