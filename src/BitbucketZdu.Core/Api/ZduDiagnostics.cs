using System;
using System.Threading;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// An ambient place for the client's verbose messages (retries, reconciliation) and its completed HTTP exchanges
    /// for the current async flow, so a cmdlet can send one call's messages to its own verbose stream (and its log)
    /// while the connection (and its client) is shared:
    /// <c>using (ZduDiagnostics.ReportTo(host.Verbose)) { await client.GetClusterAsync(ct); }</c>.
    /// </summary>
    public static class ZduDiagnostics
    {
        private static readonly AsyncLocal<Action<string>?> Current = new AsyncLocal<Action<string>?>();
        private static readonly AsyncLocal<Action<ZduRequestRecord>?> CurrentRequests = new AsyncLocal<Action<ZduRequestRecord>?>();

        public static IDisposable ReportTo(Action<string> sink)
        {
            var previous = Current.Value;
            Current.Value = sink;
            return new Restore(() => Current.Value = previous);
        }

        /// <summary>Sends every HTTP exchange of the clients used in the current async flow to <paramref name="sink"/>.</summary>
        public static IDisposable ReportRequestsTo(Action<ZduRequestRecord> sink)
        {
            var previous = CurrentRequests.Value;
            CurrentRequests.Value = sink;
            return new Restore(() => CurrentRequests.Value = previous);
        }

        private static readonly AsyncLocal<Action<string>?> CurrentWarnings = new AsyncLocal<Action<string>?>();

        /// <summary>Sends the client's warnings (what it tolerated in an answer) of the current async flow to <paramref name="sink"/>.</summary>
        public static IDisposable WarnTo(Action<string> sink)
        {
            var previous = CurrentWarnings.Value;
            CurrentWarnings.Value = sink;
            return new Restore(() => CurrentWarnings.Value = previous);
        }

        /// <summary>A warning: to the ambient warning sink when there is one, else as a diagnostic line.</summary>
        internal static void Warn(ZduClientOptions options, string message)
        {
            if (CurrentWarnings.Value is { } sink) sink(message);
            else Write(options, "WARNING: " + message);
        }

        /// <summary>To the ambient sink only (<see cref="ReportTo"/>): for HTTP that has no client options (the journal).</summary>
        internal static void Ambient(string message) => Current.Value?.Invoke(message);

        internal static void Write(ZduClientOptions options, string message)
        {
            options.Diagnostic?.Invoke(message);
            Current.Value?.Invoke(message);
        }

        internal static void Completed(ZduClientOptions options, ZduRequestRecord record)
        {
            try
            {
                options.RequestCompleted?.Invoke(record);
                CurrentRequests.Value?.Invoke(record);
            }
            catch (Exception)
            {
                // A broken log sink must not fail the request it reports on.
            }
        }

        internal sealed class Restore : IDisposable
        {
            private readonly Action _restore;
            public Restore(Action restore) => _restore = restore;
            public void Dispose() => _restore();
        }
    }

    /// <summary>
    /// One HTTP exchange with the rolling-upgrade API as logs see it: method, path (no user info, no query), status
    /// (null when no answer came) and elapsed time. Never headers or bodies.
    /// </summary>
    public sealed class ZduRequestRecord
    {
        public ZduRequestRecord(string method, Uri uri, int? status, TimeSpan elapsed, string? failure)
        {
            Method = method;
            Path = uri.IsAbsoluteUri ? uri.AbsolutePath : uri.OriginalString.Split('?')[0];
            Host = uri.IsAbsoluteUri ? uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped) : null;
            Status = status;
            Elapsed = elapsed;
            Failure = failure;
        }

        public string Method { get; }
        public string Path { get; }
        /// <summary>scheme://host:port, without user info.</summary>
        public string? Host { get; }
        public int? Status { get; }
        public TimeSpan Elapsed { get; }
        public string? Failure { get; }
    }
}
