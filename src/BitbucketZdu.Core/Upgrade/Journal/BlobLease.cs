using System;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// The run lock of <see cref="AzureBlobJournalStore"/>: a lease on the journal blob, renewed in the background until
    /// released (<see cref="DisposeAsync"/>, awaited by the runner's <c>await using</c>) or abandoned (what a crash leaves).
    /// </summary>
    internal sealed class BlobLease : IJournalLock
    {
        private readonly AzureBlobClient _blob;
        private readonly Uri _blobUri;
        private readonly Func<BlobLease, CancellationToken, Task> _release;
        private readonly TimeSpan _requestTimeout;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private Task _renewing = Task.CompletedTask;
        private int _state; // 0 held, 1 released or abandoned

        /// <param name="release">Clears the holder and releases the lease (the store's, which also forgets the lease).</param>
        public BlobLease(AzureBlobClient blob, Uri blobUri, string cluster, string id, LockOwner owner, LockOwner? tookOverFrom,
            TimeSpan requestTimeout, Func<BlobLease, CancellationToken, Task> release)
        {
            _blob = blob;
            _blobUri = blobUri;
            _release = release;
            _requestTimeout = requestTimeout;
            Cluster = cluster;
            Id = id;
            Owner = owner;
            TookOverFrom = tookOverFrom;
        }

        public string Cluster { get; }
        public string Id { get; }
        public LockOwner Owner { get; }
        public LockOwner? TookOverFrom { get; }
        public int Renewals;
        public string? LastRenewError { get; private set; }

        /// <summary>
        /// Renews every <paramref name="interval"/> in real time, not on the engine's clock: the lease runs out on the
        /// storage service's clock, whatever time the engine is told.
        /// </summary>
        public void StartRenewing(TimeSpan interval) => _renewing = Task.Run(() => RenewLoopAsync(interval));

        private async Task RenewLoopAsync(TimeSpan interval)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                    await _blob.RenewLeaseAsync(_blobUri, Id, _stop.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref Renewals);
                    LastRenewError = null;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (BbException ex)
                {
                    // Keep trying until the lease is gone for good; appends then fail with JournalLeaseLost.
                    LastRenewError = ex.ErrorId;
                }
            }
        }

        /// <summary>Stops renewing without releasing (what a crashed process leaves behind).</summary>
        public void Abandon()
        {
            if (Interlocked.Exchange(ref _state, 1) == 1) return;
            _stop.Cancel();
        }

        /// <summary>Stops renewing and releases the lease, bounded by the request timeout; a failed release leaves the lease to expire.</summary>
        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _state, 1) == 1) return;
            _stop.Cancel();
            try { await _renewing.ConfigureAwait(false); } catch (OperationCanceledException) { }
            using var cts = new CancellationTokenSource(_requestTimeout);
            try
            {
                await _release(this, cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is BbException || ex is OperationCanceledException)
            {
                // The lease then expires on its own within LeaseDuration; nothing is lost.
            }
        }
    }
}
