using System;
using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using BitbucketZdu.Models;

namespace BitbucketZdu.Internal
{
    /// <summary>The default connection per runspace, so parallel runspaces (and tests) do not share one.</summary>
    internal static class ConnectionStore
    {
        private static readonly ConcurrentDictionary<Guid, BbConnection> Defaults = new ConcurrentDictionary<Guid, BbConnection>();

        private static Guid Key => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

        public static BbConnection? Current
        {
            get => Defaults.TryGetValue(Key, out var c) ? c : null;
        }

        public static void Set(BbConnection connection)
        {
            Defaults.AddOrUpdate(Key, connection, (_, old) =>
            {
                // A connection the caller holds (-PassThru) stays usable with -Connection after another becomes the default.
                if (!ReferenceEquals(old, connection) && !old.PassedToCaller) old.Dispose();
                return connection;
            });
        }

        public static BbConnection? Remove() => Defaults.TryRemove(Key, out var c) ? c : null;
    }
}
