using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    public static class JournalLocking
    {
        /// <summary>
        /// Takes the cluster's lock for a run. A blob lease left by a job that died (an unloaded runbook) cannot be told
        /// from a live one until it expires, so that store waits for it and says so through the host's warnings.
        /// </summary>
        public static Task<IJournalLock> AcquireLockWaitingAsync(this IJournalStore store, string cluster, LockOwner owner, IOperationHost host, CancellationToken ct) =>
            store is AzureBlobJournalStore blob ? blob.AcquireLockAsync(cluster, owner, host.Warning, ct) : store.AcquireLockAsync(cluster, owner, ct);
    }
}
