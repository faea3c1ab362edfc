using System;
using System.Threading;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// An ambient place for the client's verbose messages (retries, reconciliation) for the current async flow, so a
    /// cmdlet can send one call's messages to its own verbose stream while the connection (and its client) is shared:
    /// <c>using (ZduDiagnostics.ReportTo(host.Verbose)) { await client.GetClusterAsync(ct); }</c>.
    /// </summary>
    public static class ZduDiagnostics
    {
        private static readonly AsyncLocal<Action<string>?> Current = new AsyncLocal<Action<string>?>();

        public static IDisposable ReportTo(Action<string> sink)
        {
            var previous = Current.Value;
            Current.Value = sink;
            return new Restore(previous);
        }

        internal static void Write(ZduClientOptions options, string message)
        {
            options.Diagnostic?.Invoke(message);
            Current.Value?.Invoke(message);
        }

        private sealed class Restore : IDisposable
        {
            private readonly Action<string>? _previous;
            public Restore(Action<string>? previous) => _previous = previous;
            public void Dispose() => Current.Value = _previous;
        }
    }
}
