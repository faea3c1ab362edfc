using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.LoadBalancers;

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

        private StructuredLog? _log;
        private bool _logFailed;

        /// <summary>
        /// Appends a JSON-lines log of this run: every step (verbose, warning, progress), every HTTP call to
        /// /rest/zdu (method, path, status, milliseconds), outputs and errors. Secrets are redacted.
        /// </summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? LogPath { get; set; }

        private string? _runId;

        /// <summary>
        /// This invocation's id, in the form of an upgrade's run id: every line of the -LogPath log carries it, and an upgrade
        /// started here takes it as its run id (the report's RunId, the journal's), so the three match.
        /// </summary>
        protected string RunId => _runId ??= Core.Upgrade.Runner.RollingUpgradeRunner.NewRunId(DateTimeOffset.UtcNow);

        /// <summary>The upgrade continues another run (-Resume): the log's lines from now on carry that run's id.</summary>
        protected void ContinueRun(string runId)
        {
            _runId = runId;
            _log?.ContinueRun(runId);
        }

        protected override void StopProcessing()
        {
            Log?.Message("end", "Stopped (Ctrl+C or pipeline stopped).");
            _stopping.Cancel();
        }

        protected override void EndProcessing()
        {
            _log?.TryWrite("end", ("message", "Done."));
            base.EndProcessing();
        }

        /// <summary>
        /// The -LogPath log, opened on first use (on the pipeline thread) with a "start" entry naming the command
        /// and its parameters; null without -LogPath. An unwritable path is a terminating error (BbLogPathUnwritable).
        /// </summary>
        internal StructuredLog? Log
        {
            get
            {
                if (_log is not null || LogPath is null || _logFailed) return _log;
                var path = GetUnresolvedProviderPathFromPSPath(LogPath);
                var log = new StructuredLog(path, MyInvocation.MyCommand?.Name ?? GetType().Name, Redactor.ForParameters(MyInvocation.BoundParameters), RunId);
                try
                {
                    var dir = System.IO.Path.GetDirectoryName(path);
                    if (!string.IsNullOrEmpty(dir)) System.IO.Directory.CreateDirectory(dir);
                    log.Write("start", new[]
                    {
                        new System.Collections.Generic.KeyValuePair<string, object?>("message", $"{log.Path}: {MyInvocation.MyCommand?.Name} started."),
                        new System.Collections.Generic.KeyValuePair<string, object?>("parameters", DescribeParameters()),
                        new System.Collections.Generic.KeyValuePair<string, object?>("module", ZduClientOptions.DefaultUserAgent),
                    });
                }
                catch (Exception ex) when (ex is System.IO.IOException || ex is UnauthorizedAccessException || ex is NotSupportedException || ex is ArgumentException)
                {
                    _logFailed = true;
                    ThrowError("BbLogPathUnwritable", ErrorCategory.WriteError, $"Cannot write the log '{path}': {ex.Message} Choose a -LogPath in a folder you can write to.", path);
                }
                return _log = log;
            }
        }

        /// <summary>Bound parameters as "Name=value" (secrets and objects only by type; the log scrubs the rest).</summary>
        private string[] DescribeParameters()
        {
            var list = new System.Collections.Generic.List<string>();
            foreach (var p in MyInvocation.BoundParameters)
            {
                var value = (p.Value as PSObject)?.BaseObject ?? p.Value;
                var text = value switch
                {
                    null => "null",
                    string str => str,
                    SwitchParameter sw => sw.IsPresent.ToString(),
                    System.Security.SecureString _ => "<secure string>",
                    PSCredential c => $"<credential {c.UserName}>",
                    Enum or int or long or bool or Uri => value.ToString(),
                    string[] arr => string.Join(",", arr),
                    _ => "<" + value.GetType().Name + ">",
                };
                list.Add(p.Key + "=" + text);
            }
            return list.ToArray();
        }

        // The Write* methods of Cmdlet are not virtual: these hide them for every BbCmdlet so that what a cmdlet
        // writes on the pipeline thread reaches the -LogPath log too (the PipelineBridge logs what the engine writes).
        public new void WriteVerbose(string text) { Log?.Message("verbose", text); base.WriteVerbose(text); }
        public new void WriteDebug(string text) { Log?.Message("debug", text); base.WriteDebug(text); }
        public new void WriteWarning(string text) { Log?.Message("warning", text); base.WriteWarning(text); }
        public new void WriteError(ErrorRecord errorRecord) { Log?.Error(errorRecord); base.WriteError(errorRecord); }
        public new void WriteObject(object? sendToPipeline) { LogOutput(sendToPipeline); base.WriteObject(sendToPipeline); }
        public new void WriteObject(object? sendToPipeline, bool enumerateCollection) { LogOutput(sendToPipeline); base.WriteObject(sendToPipeline, enumerateCollection); }
        public new void WriteProgress(ProgressRecord progressRecord)
        {
            Log?.Progress(progressRecord.Activity, progressRecord.StatusDescription, progressRecord.CurrentOperation, progressRecord.PercentComplete, progressRecord.RecordType == ProgressRecordType.Completed);
            base.WriteProgress(progressRecord);
        }

        public new void ThrowTerminatingError(ErrorRecord errorRecord)
        {
            if (!_logFailed) Log?.Error(errorRecord);
            base.ThrowTerminatingError(errorRecord);
        }

        internal static string DescribeRequest(ZduRequestRecord r) =>
            $"{r.Method} {r.Host}{r.Path} -> " + (r.Status is int status ? status.ToString(System.Globalization.CultureInfo.InvariantCulture) : "no answer (" + r.Failure + ")")
            + $" in {(long)r.Elapsed.TotalMilliseconds} ms";

        internal static string DescribeLoadBalancerCall(LoadBalancerCallRecord r)
        {
            var what = r.Kind == LoadBalancerCallKind.Http ? $"{r.Method} {r.Host}{r.Path}" : $"'{r.Command}' on {r.Host}";
            var outcome = r.Failure is not null ? "no answer (" + r.Failure + ")"
                : r.Kind == LoadBalancerCallKind.Http ? (r.Status ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture) : r.Result;
            return $"{r.Provider}: {what} -> {outcome} in {(long)r.Elapsed.TotalMilliseconds} ms";
        }

        internal void LogOutput(object? value)
        {
            if (value is null || Log is null) return;
            var inner = (value as PSObject)?.BaseObject ?? value;
            Log.TryWrite("output", ("type", inner.GetType().FullName), ("text", inner.ToString()));
        }

        /// <summary>Runs <paramref name="work"/> in the background and pumps its Write*/ShouldProcess calls here.</summary>
        protected T Run<T>(Func<PipelineBridge, CancellationToken, Task<T>> work)
        {
            var bridge = new PipelineBridge(this) { Log = Log };
            var log = bridge.Log;
            var task = Task.Run(async () =>
            {
                // Every /rest/zdu call: a JSON line in the -LogPath log and a plain line for -Debug.
                using (ZduDiagnostics.ReportRequestsTo(r =>
                       {
                           log?.Http(r);
                           bridge.DebugUnlogged(DescribeRequest(r));
                       }))
                // HTTP with no client options of its own (the blob journal, managed-identity tokens; the factory's
                // redacted lines): the -LogPath log and -Debug. A cmdlet may send its API calls' lines to Verbose instead.
                using (ZduDiagnostics.ReportTo(m =>
                       {
                           log?.Message("debug", m);
                           bridge.DebugUnlogged(m);
                       }))
                // What the API client tolerated in an answer (a stale duplicate node row): a warning.
                using (ZduDiagnostics.WarnTo(bridge.Warning))
                // Every load-balancer call (HTTP, HAProxy runtime command, nginx -t / reload): the same, tagged with the load balancer.
                using (LoadBalancerDiagnostics.ReportTo(r =>
                       {
                           log?.LoadBalancerCall(r);
                           bridge.DebugUnlogged(DescribeLoadBalancerCall(r));
                       }))
                    return await work(bridge, StopToken).ConfigureAwait(false);
            });
            task.ContinueWith(_ => bridge.Queue.CompleteAdding(), TaskScheduler.Default);
            // Once the pipeline is stopping (Ctrl+C, or a downstream command such as Select-Object -First is done),
            // every Write* here throws PipelineStoppedException. The engine must still finish cleaning up before this
            // cmdlet returns and disposes what the work uses (put a drained node back into rotation, journal the
            // cancellation, release the cluster's lock): cancel it, keep pumping (answering its questions so it never
            // waits forever; what it writes is still logged by the bridge) until it ends, then stop.
            PipelineStoppedException? stopped = null;
            foreach (var action in bridge.Queue.GetConsumingEnumerable())
            {
                try
                {
                    action();
                }
                catch (PipelineStoppedException ex)
                {
                    if (stopped is null)
                    {
                        stopped = ex;
                        _stopping.Cancel();
                    }
                }
            }
            if (stopped is null && !StopToken.IsCancellationRequested)
            {
                try
                {
                    bridge.CompleteOpenProgress();
                }
                catch (PipelineStoppedException ex)
                {
                    stopped = ex;
                }
            }
            if (stopped is not null || StopToken.IsCancellationRequested) ShowAfterStop(bridge.UnshownWarnings);
            try
            {
                var result = task.GetAwaiter().GetResult();
                if (stopped is not null) throw stopped;
                return result;
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                if (stopped is not null) throw stopped;
                throw new PipelineStoppedException();
            }
            catch (Exception) when (stopped is not null)
            {
                // The engine failed while stopping (it was cancelled): the stop is what the caller must see.
                throw stopped;
            }
        }

        /// <summary>
        /// After Ctrl+C the pipeline refuses every Write*: what the engine warned while cleaning up (and what
        /// <see cref="NotesAfterStop"/> adds: the state left and the command to go on) is written to the host directly,
        /// so it is on the screen, not only in the -LogPath log and the journal.
        /// </summary>
        private void ShowAfterStop(System.Collections.Generic.IReadOnlyList<string> unshown)
        {
            var notes = new System.Collections.Generic.List<string>(unshown);
            try
            {
                notes.AddRange(NotesAfterStop());
            }
            catch (Exception ex) when (!(ex is OutOfMemoryException))
            {
                notes.Add("Could not read what the run left: " + ex.Message);
            }
            foreach (var note in notes)
            {
                Log?.Message("warning", note);
                try
                {
                    Host?.UI?.WriteWarningLine(note);
                }
                catch (Exception ex) when (ex is System.Management.Automation.Host.HostException || ex is NotImplementedException || ex is PipelineStoppedException || ex is InvalidOperationException)
                {
                    // A host without a UI (a bare runspace): the log still has it.
                }
            }
        }

        /// <summary>What to tell the user after a stop, beyond the engine's warnings (read once the work has ended).</summary>
        protected virtual System.Collections.Generic.IEnumerable<string> NotesAfterStop() => Array.Empty<string>();

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

        /// <param name="target">What the error is about, as a user reads it: a URL, a node name, a file path (not an engine object).</param>
        /// <param name="recommendedAction">The next step, where it is known (ErrorDetails.RecommendedAction).</param>
        protected void ThrowError(string errorId, ErrorCategory category, string message, object? target = null, string? recommendedAction = null)
        {
            // Categories the engine has no twin of (WriteError, ...) map to NotSpecified there; the record keeps the real one.
            var engineCategory = Enum.TryParse<BbErrorCategory>(category.ToString(), out var c) ? c : BbErrorCategory.NotSpecified;
            var error = new BbException(errorId, engineCategory, message, target) { RecommendedAction = recommendedAction };
            ThrowTerminatingError(BbErrors.WithRecommendedAction(new ErrorRecord(error, errorId, category, BbErrors.Readable(target)), error));
        }

        /// <summary>
        /// The one rule for -Proxy (Connect-BbCluster, the upgrade cmdlets): an absolute http:// or https:// URL without
        /// user info, because a password in the URL would end up in logs and error records; it goes in -ProxyCredential.
        /// </summary>
        protected void ThrowIfInvalidProxy(Uri? proxy, string errorId)
        {
            if (proxy is not null && (!proxy.IsAbsoluteUri || (proxy.Scheme != Uri.UriSchemeHttp && proxy.Scheme != Uri.UriSchemeHttps) || !string.IsNullOrEmpty(proxy.UserInfo)))
                ThrowError(errorId, ErrorCategory.InvalidArgument,
                    "-Proxy must be an http:// or https:// URL without credentials (pass those with -ProxyCredential), e.g. http://proxy.example.com:3128.");
        }

        /// <summary>-TrustedCertificatePath as a file-system path (relative to the current PowerShell location), or null.</summary>
        protected string? TrustedCertificateFile(string? path) => path is null ? null : GetUnresolvedProviderPathFromPSPath(path);

        /// <summary>The one warning for -SkipCertificateCheck: what is not verified, and what that exposes.</summary>
        protected void WarnCertificateCheckOff(string what, string exposure = "") =>
            WriteWarning($"TLS certificate verification is OFF for {what}.{(exposure.Length > 0 ? " " + exposure : "")} Use this only against a test server.");

        private static bool IsEngineFailure(Exception ex) =>
            ex is BbException || ex is TimeoutException || ex is ArgumentException || ex is System.IO.IOException
            || ex is UnauthorizedAccessException || ex is System.Net.Http.HttpRequestException || ex is InvalidOperationException;
    }
}
