using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Upgrade.Ports;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>Tuning of <see cref="AzureBlobJournalStore"/>.</summary>
    public sealed class AzureBlobJournalOptions
    {
        /// <summary>Lease length, 15 to 60 s (Azure's bounds). A crashed run's lock frees itself this long after its last renewal.</summary>
        public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>How often a held lease is renewed; default a third of <see cref="LeaseDuration"/>.</summary>
        public TimeSpan? RenewInterval { get; set; }

        /// <summary>Timeout of one storage request.</summary>
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>Prefix of the blob names inside the container, e.g. <c>bitbucket/</c>.</summary>
        public string BlobPrefix { get; set; } = "";

        /// <summary>
        /// How long taking the lock waits while another run holds the lease. Null (the default): the holder's lease
        /// length plus a margin, long enough for the lease of a job that died (an unloaded Azure Automation job) to
        /// expire, and a run that renews it is still refused. <see cref="TimeSpan.Zero"/>: fail fast with JournalLocked.
        /// </summary>
        public TimeSpan? LockWait { get; set; }

        /// <summary>
        /// The engine's clock, which the wait for another run's lease (<see cref="LockWait"/>) is timed and paced by;
        /// null for real time. Lease renewal always runs in real time: the lease expires on the service's clock.
        /// </summary>
        public UpgradeClock? Clock { get; set; }
    }

    /// <summary>
    /// Journals in an Azure Storage container, for runs whose disk does not survive them (Azure Automation jobs): the
    /// journal of a cluster is the append blob <c>&lt;prefix&gt;&lt;cluster&gt;.journal.jsonl</c> (one JSON line per
    /// entry, each append committed before it returns), and the run lock is a LEASE on that blob (<see cref="BlobLease"/>),
    /// renewed while the run holds it and released at the end. A crashed run's lease expires after <see cref="AzureBlobJournalOptions.LeaseDuration"/>
    /// and the next run takes over (the lock says whom from). While a run holds the lease, appends carry its lease id,
    /// so a run that lost its lease cannot write; appends are also conditioned on the blob's length, so two writers
    /// never interleave unnoticed. The REST calls are <see cref="AzureBlobClient"/>'s.
    /// </summary>
    public sealed class AzureBlobJournalStore : IJournalStore, IJournalProbe, IDisposable
    {
        internal const string ApiVersion = AzureBlobClient.ApiVersion;

        private readonly AzureBlobClient _blob;
        private readonly AzureBlobJournalOptions _options;
        private readonly UpgradeClock _clock;
        private readonly ConcurrentDictionary<string, BlobLease> _leases = new ConcurrentDictionary<string, BlobLease>(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, long> _knownLength = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        private readonly SemaphoreSlim _write = new SemaphoreSlim(1, 1);

        /// <param name="containerUri">The container, e.g. <c>https://account.blob.core.windows.net/bitbucket-zdu</c>, without a query (pass a SAS as the credential).</param>
        /// <param name="credential">Shared Key, SAS or bearer token.</param>
        /// <param name="options">Lease and request tuning; null for the defaults.</param>
        /// <param name="handler">For tests and proxies: the HTTP handler (owned by the store); null for a default one that verifies TLS.</param>
        public AzureBlobJournalStore(Uri containerUri, AzureStorageCredential credential, AzureBlobJournalOptions? options = null, HttpMessageHandler? handler = null)
        {
            if (containerUri is null) throw new ArgumentNullException(nameof(containerUri));
            if (!containerUri.IsAbsoluteUri || (containerUri.Scheme != Uri.UriSchemeHttps && containerUri.Scheme != Uri.UriSchemeHttp))
                throw new BbException("JournalStorageInvalidUri", BbErrorCategory.InvalidArgument,
                    "The journal container must be an absolute https URI such as https://<account>.blob.core.windows.net/<container>.", containerUri.GetLeftPart(UriPartial.Path));
            if (!string.IsNullOrEmpty(containerUri.Query))
                throw new BbException("JournalStorageInvalidUri", BbErrorCategory.InvalidArgument,
                    $"The journal container URI {containerUri.GetLeftPart(UriPartial.Path)} has a query string. Pass a SAS token as the credential (AzureStorageCredential.Sas), not in the URI, so it never appears in messages.",
                    containerUri.GetLeftPart(UriPartial.Path));
            if (credential is null) throw new ArgumentNullException(nameof(credential));
            if (credential.Kind == AzureStorageAuthKind.Bearer && containerUri.Scheme != Uri.UriSchemeHttps && !containerUri.IsLoopback)
                throw new BbException("JournalStorageInsecure", BbErrorCategory.SecurityError,
                    $"A bearer token is only sent over https; {containerUri.GetLeftPart(UriPartial.Path)} is http.", containerUri.GetLeftPart(UriPartial.Path));
            _options = options ?? new AzureBlobJournalOptions();
            if (_options.LeaseDuration < TimeSpan.FromSeconds(15) || _options.LeaseDuration > TimeSpan.FromSeconds(60))
                throw new ArgumentOutOfRangeException(nameof(options), "LeaseDuration must be between 15 and 60 seconds (Azure's bounds).");
            _clock = _options.Clock ?? UpgradeClock.System;
            _blob = new AzureBlobClient(containerUri, credential, _options.RequestTimeout, handler);
        }

        public Uri ContainerUri => _blob.ContainerUri;

        public AzureBlobJournalOptions Options => _options;

        public string BlobName(string cluster) => _options.BlobPrefix + cluster + ".journal.jsonl";

        public Uri BlobUri(string cluster) => _blob.BlobUri(BlobName(cluster));

        public string Describe(string cluster) => BlobUri(cluster).AbsoluteUri;

        /// <summary>Creates the container when it does not exist (needs a credential allowed to; a SAS for the container is not).</summary>
        public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken) => _blob.CreateContainerIfMissingAsync(cancellationToken);

        public async Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            var bytes = await _blob.GetAsync(blob, "read the journal", cancellationToken).ConfigureAwait(false);
            if (bytes is null) return new List<JournalEntry>();
            _knownLength[cluster] = bytes.LongLength;
            return JournalLines.Parse(Encoding.UTF8.GetString(bytes), blob.AbsoluteUri, "rename the blob");
        }

        public async Task AppendAsync(string cluster, JournalEntry entry, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(JournalLines.Format(entry));
            var blob = BlobUri(cluster);
            await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!_knownLength.ContainsKey(cluster)) await CreateBlobIfMissingAsync(cluster, cancellationToken).ConfigureAwait(false);
                _leases.TryGetValue(cluster, out var lease);
                long? position = _knownLength.TryGetValue(cluster, out var length) ? length : null;
                var r = await _blob.AppendBlockAsync(blob, bytes, lease?.Id, position, cancellationToken).ConfigureAwait(false);
                if (r.Ok)
                {
                    _knownLength[cluster] = (r.AppendOffset ?? length) + bytes.LongLength;
                    return;
                }
                _knownLength.TryRemove(cluster, out _);
                if (r.ErrorCode == "AppendPositionConditionNotMet")
                    throw new BbException("JournalConflict", BbErrorCategory.InvalidOperation,
                        $"Another writer appended to the journal {blob} since this run last read it. Only one run may write a cluster's journal; "
                        + "check for a second run of the same cluster, then run again with -Resume.", blob.AbsoluteUri);
                if (r.ErrorCode == "LeaseIdMissing")
                    throw Locked(cluster, await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false));
                if (r.ErrorCode is "LeaseIdMismatchWithBlobOperation" or "LeaseLost" or "LeaseNotPresentWithBlobOperation")
                    throw LeaseLost(cluster, lease);
                throw r.Error!;
            }
            finally
            {
                _write.Release();
            }
        }

        /// <summary>Margin over the holder's lease length: request latency and the service's expiry granularity.</summary>
        internal static readonly TimeSpan LockWaitMargin = TimeSpan.FromSeconds(10);

        /// <summary>
        /// Takes the lease. While another run holds it, polls until it expires, up to <see cref="AzureBlobJournalOptions.LockWait"/>
        /// (a dead job's lease frees itself within its length; a live run renews it and is still there at the deadline),
        /// and tells <paramref name="waiting"/> at the start and every 10 s. The wait is timed and paced by
        /// <see cref="AzureBlobJournalOptions.Clock"/>.
        /// </summary>
        public async Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, Action<string>? waiting, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            await CreateBlobIfMissingAsync(cluster, cancellationToken).ConfigureAwait(false);
            var leaseId = Guid.NewGuid().ToString();
            var leaseSeconds = (int)_options.LeaseDuration.TotalSeconds;
            var started = _clock.Timestamp;
            TimeSpan? limit = null;
            var told = TimeSpan.Zero;
            Head before;
            while (true)
            {
                before = await HeadAsync(cluster, cancellationToken).ConfigureAwait(false);
                var r = await _blob.AcquireLeaseAsync(blob, leaseSeconds, leaseId, "take the journal's lease", cancellationToken).ConfigureAwait(false);
                if (r.Ok) break;
                if (r.ErrorCode != "LeaseAlreadyPresent") throw r.Error!;
                var holder = await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false) ?? before.Holder;
                if (limit is null)
                {
                    // The holder's own lease length when it recorded one (another profile may use another), else Azure's maximum.
                    limit = _options.LockWait ?? TimeSpan.FromSeconds(before.LeaseSeconds ?? 60) + LockWaitMargin;
                    if (limit <= TimeSpan.Zero) throw Locked(cluster, holder);
                    waiting?.Invoke($"Another run holds the lease of cluster '{cluster}' on {Describe(cluster)}" + (holder is null ? "" : $" ({holder})")
                        + $". Waiting up to {limit.Value.TotalSeconds:0} s for it to expire: a run that died leaves its lease until then; a live run renews it.");
                }
                var elapsed = _clock.Since(started);
                if (elapsed >= limit) throw Locked(cluster, holder, elapsed);
                if (elapsed - told >= TimeSpan.FromSeconds(10))
                {
                    told = elapsed;
                    waiting?.Invoke($"Still waiting for the lease of cluster '{cluster}': {elapsed.TotalSeconds:0} s of up to {limit.Value.TotalSeconds:0} s.");
                }
                // Polling the lease with a deadline: Azure has no notification of a lease's expiry.
                await _clock.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }

            // A previous holder whose lease ran out (or was broken) without releasing left its name behind: a crashed run.
            var stale = before.LeaseState is "expired" or "broken" or "available" ? before.Holder : null;
            var lease = new BlobLease(_blob, blob, cluster, leaseId, owner, stale, _options.RequestTimeout, ReleaseAsync);
            await SetHolderAsync(cluster, leaseId, owner, cancellationToken).ConfigureAwait(false);
            var fresh = await HeadAsync(cluster, cancellationToken).ConfigureAwait(false);
            _knownLength[cluster] = fresh.Length;
            _leases[cluster] = lease;
            lease.StartRenewing(_options.RenewInterval ?? TimeSpan.FromTicks(_options.LeaseDuration.Ticks / 3));
            return lease;
        }

        /// <summary>
        /// Proves a run could use the journal without adding to it: creates the blob when missing (write permission),
        /// reads its properties, and takes a short lease and releases it at once (lease permission). Throws
        /// JournalLocked when another run holds the lease; when this store holds it, says so.
        /// </summary>
        public async Task<string> ProbeAsync(string cluster, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            await CreateBlobIfMissingAsync(cluster, cancellationToken).ConfigureAwait(false);
            var head = await HeadAsync(cluster, cancellationToken).ConfigureAwait(false);
            var what = $"The journal {blob} ({_blob.Credential}) is reachable and writable";
            if (_leases.ContainsKey(cluster)) return what + "; this run holds its lease.";
            if (head.LeaseState == "leased") throw Locked(cluster, head.Holder);
            var probeId = Guid.NewGuid().ToString();
            var r = await _blob.AcquireLeaseAsync(blob, 15, probeId, "take the journal's lease", cancellationToken).ConfigureAwait(false);
            if (r.ErrorCode == "LeaseAlreadyPresent")
                throw Locked(cluster, await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false) ?? head.Holder);
            if (!r.Ok) throw r.Error!;
            await _blob.ReleaseLeaseAsync(blob, probeId, cancellationToken).ConfigureAwait(false);
            return what + $", and its lease (the run lock) can be taken; a crashed run's lease frees itself within {(int)_options.LeaseDuration.TotalSeconds} s.";
        }

        /// <summary>Stops renewing every lease without releasing it: what a crash leaves. The leases expire on their own.</summary>
        public void Dispose()
        {
            foreach (var l in _leases.Values) l.Abandon();
            _blob.Dispose();
        }

        private BbException Locked(string cluster, LockOwner? holder, TimeSpan? waited = null) =>
            new BbException("JournalLocked", BbErrorCategory.ResourceExists,
                $"Another run holds the lease of cluster '{cluster}' on {Describe(cluster)}" + (holder is null ? "" : $": {holder}") + ". "
                + (waited is TimeSpan w
                    ? $"It was still held after waiting {w.TotalSeconds:0} s, longer than a lease lasts without renewal: that run is alive. Wait for it to finish, then run again with -Resume."
                    : $"Wait for it to finish. If that run crashed, its lease expires within {(int)_options.LeaseDuration.TotalSeconds} s; then run again with -Resume."),
                Describe(cluster));

        private BbException LeaseLost(string cluster, BlobLease? lease) =>
            new BbException("JournalLeaseLost", BbErrorCategory.InvalidOperation,
                $"This run lost the lease of cluster '{cluster}' on {Describe(cluster)}" + (lease?.LastRenewError is string e ? $" ({e})" : "")
                + ": the storage account was unreachable for longer than the lease, or the lease was broken. The run stopped writing; "
                + "check no other run took over, then run again with -Resume.", Describe(cluster));

        private Task CreateBlobIfMissingAsync(string cluster, CancellationToken cancellationToken) =>
            _blob.CreateAppendBlobIfMissingAsync(BlobUri(cluster), "create the journal blob", cancellationToken);

        /// <summary>The journal blob's lease state, the holder its metadata names, its length, and the lease length the holder recorded.</summary>
        private sealed class Head
        {
            public string LeaseState = "";
            public LockOwner? Holder;
            public long Length;
            public int? LeaseSeconds;
        }

        private async Task<Head> HeadAsync(string cluster, CancellationToken cancellationToken)
        {
            var p = await _blob.HeadAsync(BlobUri(cluster), "read the journal's properties", cancellationToken).ConfigureAwait(false);
            LockOwner? holder = null;
            var host = p.Meta("ownerhost");
            if (!string.IsNullOrEmpty(host))
            {
                int.TryParse(p.Meta("ownerpid"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid);
                holder = new LockOwner(host!, pid);
                if (DateTimeOffset.TryParse(p.Meta("ownersince"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var since)) holder.Since = since;
            }
            int? leaseSeconds = int.TryParse(p.Meta("ownerleaseseconds"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ls) && ls is >= 15 and <= 60 ? ls : null;
            return new Head { LeaseState = p.LeaseState, Holder = holder, Length = p.Length, LeaseSeconds = leaseSeconds };
        }

        private async Task<LockOwner?> ReadHolderAsync(string cluster, CancellationToken cancellationToken)
        {
            try
            {
                return (await HeadAsync(cluster, cancellationToken).ConfigureAwait(false)).Holder;
            }
            catch (BbException)
            {
                return null;
            }
        }

        private Task SetHolderAsync(string cluster, string leaseId, LockOwner? owner, CancellationToken cancellationToken)
        {
            var metadata = new Dictionary<string, string>();
            if (owner is not null)
            {
                metadata["ownerhost"] = Ascii(owner.Host);
                metadata["ownerpid"] = owner.Pid.ToString(CultureInfo.InvariantCulture);
                metadata["ownersince"] = owner.Since.UtcDateTime.ToString("o", CultureInfo.InvariantCulture);
                // So a run that finds this lease held knows how long it can last without renewal.
                metadata["ownerleaseseconds"] = ((int)_options.LeaseDuration.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }
            return _blob.SetMetadataAsync(BlobUri(cluster), leaseId, metadata, "record the lock holder", cancellationToken);
        }

        private static string Ascii(string value) => new string(value.Select(c => c >= 0x20 && c < 0x7f ? c : '_').ToArray());

        private async Task ReleaseAsync(BlobLease lease, CancellationToken cancellationToken)
        {
            ((ICollection<KeyValuePair<string, BlobLease>>)_leases).Remove(new KeyValuePair<string, BlobLease>(lease.Cluster, lease));
            // Clear the holder's name first, so the next run does not take a clean release for a crash.
            await SetHolderAsync(lease.Cluster, lease.Id, null, cancellationToken).ConfigureAwait(false);
            await _blob.ReleaseLeaseAsync(BlobUri(lease.Cluster), lease.Id, cancellationToken).ConfigureAwait(false);
        }
    }
}
