using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Threading;
using BitbucketZdu.Core.Hosting;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// Lets background work talk to PowerShell safely: every Write*/ShouldProcess call is queued and run on the
    /// pipeline thread by <see cref="BbCmdlet"/>'s pump. A call made on the pipeline thread itself runs at once.
    /// </summary>
    public sealed class PipelineBridge : IOperationHost, IInformationHost
    {
        private readonly PSCmdlet _cmdlet;
        private readonly int _pipelineThreadId;
        private readonly BlockingCollection<Action> _queue = new BlockingCollection<Action>();

        internal PipelineBridge(PSCmdlet cmdlet)
        {
            _cmdlet = cmdlet;
            _pipelineThreadId = Thread.CurrentThread.ManagedThreadId;
        }

        internal BlockingCollection<Action> Queue => _queue;

        /// <summary>The cmdlet's -LogPath log; everything the engine writes through this bridge is logged at once (from any thread).</summary>
        internal StructuredLog? Log { get; set; }

        public void WriteObject(object? value)
        {
            if (Log is not null && value is not null)
                Log.TryWrite("output", ("type", ((value as PSObject)?.BaseObject ?? value).GetType().FullName), ("text", value.ToString()));
            Post(() => _cmdlet.WriteObject(value));
        }

        public void WriteError(ErrorRecord record)
        {
            Log?.Error(record);
            Post(() => _cmdlet.WriteError(record));
        }

        public void Verbose(string message)
        {
            Log?.Message("verbose", message);
            Post(() => _cmdlet.WriteVerbose(message));
        }

        public void Debug(string message)
        {
            Log?.Message("debug", message);
            Post(() => _cmdlet.WriteDebug(message));
        }

        /// <summary>A debug line that is not logged (its structured twin is already in the log).</summary>
        internal void DebugUnlogged(string message) => Post(() => _cmdlet.WriteDebug(message));

        public void Warning(string message)
        {
            Log?.Message("warning", message);
            Post(() => _cmdlet.WriteWarning(message));
        }

        public void Information(string message, string[]? tags = null)
        {
            Log?.Message("information", message);
            Post(() =>
            {
                var record = new InformationRecord(message, _cmdlet.MyInvocation.MyCommand?.Name ?? "BitbucketZdu");
                if (tags is not null) foreach (var t in tags) record.Tags.Add(t);
                _cmdlet.WriteInformation(record);
            });
        }

        public void Progress(OperationProgress progress)
        {
            var record = new ProgressRecord(progress.ActivityId, progress.Activity, string.IsNullOrEmpty(progress.Status) ? " " : progress.Status)
            {
                ParentActivityId = progress.ParentActivityId,
                PercentComplete = Math.Max(-1, Math.Min(100, progress.PercentComplete)),
                SecondsRemaining = progress.SecondsRemaining,
                CurrentOperation = progress.CurrentOperation,
                RecordType = progress.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
            };
            Log?.Progress(record.Activity, record.StatusDescription, record.CurrentOperation, record.PercentComplete, progress.Completed);
            Post(() => _cmdlet.WriteProgress(record));
        }

        public bool ShouldProcess(string target, string action) => Ask(() => _cmdlet.ShouldProcess(target, action));

        /// <summary>Runs <paramref name="question"/> on the pipeline thread and waits for its answer.</summary>
        public T Ask<T>(Func<T> question)
        {
            if (Thread.CurrentThread.ManagedThreadId == _pipelineThreadId) return question();
            using var done = new ManualResetEventSlim();
            T answer = default!;
            Exception? error = null;
            Post(() =>
            {
                try { answer = question(); }
                catch (Exception ex) { error = ex; }
                finally { done.Set(); }
            });
            done.Wait();
            if (error is not null) throw error;
            return answer;
        }

        private void Post(Action action)
        {
            if (Thread.CurrentThread.ManagedThreadId == _pipelineThreadId)
            {
                action();
                return;
            }
            try
            {
                _queue.Add(action);
            }
            catch (InvalidOperationException)
            {
                // The cmdlet finished pumping (stopped); nothing can be written any more.
            }
        }
    }
}
