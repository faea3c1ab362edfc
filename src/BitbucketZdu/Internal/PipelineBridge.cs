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
            Post(() =>
            {
                try
                {
                    _cmdlet.WriteWarning(message);
                }
                catch (PipelineStoppedException)
                {
                    // What the engine says while it cleans up after Ctrl+C (which node stays out, how to go on) is
                    // what the user most needs: the cmdlet shows these on the host once the work has ended.
                    lock (_unshown) _unshown.Add(message);
                    throw;
                }
            });
        }

        private readonly System.Collections.Generic.List<string> _unshown = new System.Collections.Generic.List<string>();

        /// <summary>Warnings the pipeline refused because it was stopping.</summary>
        internal System.Collections.Generic.IReadOnlyList<string> UnshownWarnings
        {
            get { lock (_unshown) return _unshown.ToArray(); }
        }

        // Progress bars still up, by activity id (touched on the pipeline thread only).
        private readonly System.Collections.Generic.Dictionary<int, ProgressRecord> _open = new System.Collections.Generic.Dictionary<int, ProgressRecord>();

        /// <summary>Writes a Completed record for every bar still up (the engine's work ended, whichever way).</summary>
        internal void CompleteOpenProgress()
        {
            foreach (var id in new System.Collections.Generic.List<int>(_open.Keys)) Complete(id);
        }

        private void Complete(int id)
        {
            var open = _open[id];
            _open.Remove(id);
            _cmdlet.WriteProgress(new ProgressRecord(id, open.Activity, "done") { ParentActivityId = open.ParentActivityId, RecordType = ProgressRecordType.Completed });
        }

        private void Track(ProgressRecord record)
        {
            if (record.RecordType == ProgressRecordType.Completed)
            {
                _open.Remove(record.ActivityId);
                return;
            }
            // A parent moving on (the next step) ends its children's waits: a child bar left up would claim a wait
            // that is over ("Waiting for node-1 to be OFFLINE" after it is).
            var changed = !_open.TryGetValue(record.ActivityId, out var before) || before.StatusDescription != record.StatusDescription;
            if (changed)
                foreach (var child in new System.Collections.Generic.List<ProgressRecord>(_open.Values))
                    if (child.ParentActivityId == record.ActivityId && child.ActivityId != record.ActivityId) Complete(child.ActivityId);
            _open[record.ActivityId] = record;
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
            Post(() =>
            {
                Track(record);
                _cmdlet.WriteProgress(record);
            });
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
