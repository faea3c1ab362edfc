using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    public static class JournalLocking
    {
        /// <summary>Takes the cluster's lock with nobody to tell while it waits (tools and tests).</summary>
        public static Task<IJournalLock> AcquireLockAsync(this IJournalStore store, string cluster, LockOwner owner, CancellationToken cancellationToken) =>
            store.AcquireLockAsync(cluster, owner, null, cancellationToken);
    }
}
