using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>Who holds a cluster's lock.</summary>
    public sealed class LockOwner
    {
        public LockOwner(string host, int pid)
        {
            Host = host;
            Pid = pid;
        }

        public string Host { get; }
        public int Pid { get; }
        public DateTimeOffset Since { get; set; } = DateTimeOffset.UtcNow;

        public static LockOwner Current
        {
            get
            {
                using var p = System.Diagnostics.Process.GetCurrentProcess();
                return new LockOwner(Environment.MachineName, p.Id);
            }
        }

        public override string ToString() => $"process {Pid} on {Host} since {Since:u}";
    }

    /// <summary>
    /// Where journals live, one per cluster (a folder: FileJournalStore; an Azure Storage container: AzureBlobJournalStore). Appends are
    /// durable before they return: a line that was written survives a crash of the process right after.
    /// </summary>
    public interface IJournalStore
    {
        /// <summary>Every entry of the cluster's journal, oldest first; empty when there is none.</summary>
        Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken cancellationToken);

        Task AppendAsync(string cluster, JournalEntry entry, CancellationToken cancellationToken);

        /// <summary>
        /// Takes the cluster's lock or throws BbException <c>JournalLocked</c> naming the holder. A lock left by a process
        /// that no longer runs on this host is stale and taken over (the returned lock says so). A store that cannot tell
        /// a dead holder from a live one until its lock expires (a blob lease) waits for that, telling
        /// <paramref name="waiting"/> (may be null) why and for how long.
        /// </summary>
        Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, Action<string>? waiting, CancellationToken cancellationToken);

        /// <summary>Where the journal of <paramref name="cluster"/> is, for messages.</summary>
        string Describe(string cluster);
    }

    /// <summary>
    /// A held lock. Releasing it may talk to storage (a blob lease), so it is released asynchronously: take it with
    /// <c>await using</c>. Not disposing it leaves what a crash leaves (a stale lock file, a lease that expires).
    /// </summary>
    public interface IJournalLock : IAsyncDisposable
    {
        /// <summary>The stale owner this lock replaced, or null.</summary>
        LockOwner? TookOverFrom { get; }
    }

    /// <summary>
    /// A store that can prove, without changing the journal, that a run could use it: reachable, the credential may
    /// write, the lock can be taken. Preflight calls it.
    /// </summary>
    public interface IJournalProbe
    {
        /// <summary>What was proven, for the finding; throws BbException (JournalLocked when another run holds the lock).</summary>
        Task<string> ProbeAsync(string cluster, CancellationToken cancellationToken);
    }
}
