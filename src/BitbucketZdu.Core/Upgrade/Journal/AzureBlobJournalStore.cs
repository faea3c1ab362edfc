using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

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
    }

    /// <summary>
    /// Journals in an Azure Storage container, for runs whose disk does not survive them (Azure Automation jobs): the
    /// journal of a cluster is the append blob <c>&lt;prefix&gt;&lt;cluster&gt;.journal.jsonl</c> (one JSON line per
    /// entry, each append committed before it returns), and the run lock is a LEASE on that blob, renewed while the run
    /// holds it and released at the end. A crashed run's lease expires after <see cref="AzureBlobJournalOptions.LeaseDuration"/>
    /// and the next run takes over (the lock says whom from). While a run holds the lease, appends carry its lease id,
    /// so a run that lost its lease cannot write; appends are also conditioned on the blob's length, so two writers
    /// never interleave unnoticed. Uses the Blob REST API over System.Net.Http only (no Azure SDK: it would conflict
    /// with the Az modules loaded in a runbook).
    /// </summary>
    public sealed class AzureBlobJournalStore : IJournalStore, IJournalProbe, IDisposable
    {
        internal const string ApiVersion = "2021-12-02";

        private readonly AzureStorageCredential _credential;
        private readonly AzureBlobJournalOptions _options;
        private readonly HttpClient _http;
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
            _credential = credential ?? throw new ArgumentNullException(nameof(credential));
            if (credential.Kind == AzureStorageAuthKind.Bearer && containerUri.Scheme != Uri.UriSchemeHttps && !containerUri.IsLoopback)
                throw new BbException("JournalStorageInsecure", BbErrorCategory.SecurityError,
                    $"A bearer token is only sent over https; {containerUri.GetLeftPart(UriPartial.Path)} is http.", containerUri.GetLeftPart(UriPartial.Path));
            _options = options ?? new AzureBlobJournalOptions();
            if (_options.LeaseDuration < TimeSpan.FromSeconds(15) || _options.LeaseDuration > TimeSpan.FromSeconds(60))
                throw new ArgumentOutOfRangeException(nameof(options), "LeaseDuration must be between 15 and 60 seconds (Azure's bounds).");
            ContainerUri = new Uri(containerUri.GetLeftPart(UriPartial.Path).TrimEnd('/'));
            _http = new HttpClient(handler ?? new HttpClientHandler(), disposeHandler: true) { Timeout = _options.RequestTimeout };
        }

        public Uri ContainerUri { get; }

        public AzureBlobJournalOptions Options => _options;

        public string BlobName(string cluster) => _options.BlobPrefix + cluster + ".journal.jsonl";

        public Uri BlobUri(string cluster) =>
            new Uri(ContainerUri.AbsoluteUri + "/" + string.Join("/", BlobName(cluster).Split('/').Select(Uri.EscapeDataString)));

        public string Describe(string cluster) => BlobUri(cluster).AbsoluteUri;

        /// <summary>Creates the container when it does not exist (needs a credential allowed to; a SAS for the container is not).</summary>
        public async Task CreateContainerIfMissingAsync(CancellationToken cancellationToken)
        {
            using var r = await SendAsync(HttpMethod.Put, new Uri(ContainerUri.AbsoluteUri + "?restype=container"), null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created || r.StatusCode == HttpStatusCode.Conflict) return;
            throw await ErrorAsync(r, ContainerUri.AbsoluteUri, "create the container").ConfigureAwait(false);
        }

        public async Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            using var r = await SendAsync(HttpMethod.Get, blob, null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.NotFound && ErrorCode(r) == "BlobNotFound") return new List<JournalEntry>();
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, "read the journal").ConfigureAwait(false);
            var bytes = await r.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            _knownLength[cluster] = bytes.LongLength;
            return JournalLines.Parse(Encoding.UTF8.GetString(bytes), blob.AbsoluteUri, "rename the blob");
        }

        public async Task AppendAsync(string cluster, JournalEntry entry, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(JournalLines.Format(entry));
            var blob = BlobUri(cluster);
            var appendUri = new Uri(blob.AbsoluteUri + "?comp=appendblock");
            await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!_knownLength.ContainsKey(cluster)) await CreateBlobIfMissingAsync(cluster, cancellationToken).ConfigureAwait(false);
                _leases.TryGetValue(cluster, out var lease);
                var headers = new Dictionary<string, string>();
                if (lease is not null) headers["x-ms-lease-id"] = lease.Id;
                if (_knownLength.TryGetValue(cluster, out var length)) headers["x-ms-blob-condition-appendpos"] = length.ToString(CultureInfo.InvariantCulture);
                using var r = await SendAsync(HttpMethod.Put, appendUri, headers, bytes, cancellationToken).ConfigureAwait(false);
                if (r.StatusCode == HttpStatusCode.Created)
                {
                    var offset = Header(r, "x-ms-blob-append-offset");
                    _knownLength[cluster] = (long.TryParse(offset, NumberStyles.Integer, CultureInfo.InvariantCulture, out var o) ? o : length) + bytes.LongLength;
                    return;
                }
                _knownLength.TryRemove(cluster, out _);
                var code = ErrorCode(r);
                if (code == "AppendPositionConditionNotMet")
                    throw new BbException("JournalConflict", BbErrorCategory.InvalidOperation,
                        $"Another writer appended to the journal {blob} since this run last read it. Only one run may write a cluster's journal; "
                        + "check for a second run of the same cluster, then run again with -Resume.", blob.AbsoluteUri);
                if (code == "LeaseIdMissing")
                    throw Locked(cluster, await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false));
                if (code is "LeaseIdMismatchWithBlobOperation" or "LeaseLost" or "LeaseNotPresentWithBlobOperation")
                    throw LeaseLost(cluster, lease);
                throw await ErrorAsync(r, blob.AbsoluteUri, "append to the journal").ConfigureAwait(false);
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
        /// and tells <paramref name="waiting"/> at the start and every 10 s.
        /// </summary>
        public async Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, Action<string>? waiting, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            await CreateBlobIfMissingAsync(cluster, cancellationToken).ConfigureAwait(false);
            var leaseId = Guid.NewGuid().ToString();
            var acquire = new Dictionary<string, string>
            {
                ["x-ms-lease-action"] = "acquire",
                ["x-ms-lease-duration"] = ((int)_options.LeaseDuration.TotalSeconds).ToString(CultureInfo.InvariantCulture),
                ["x-ms-proposed-lease-id"] = leaseId,
            };
            var watch = System.Diagnostics.Stopwatch.StartNew();
            TimeSpan? limit = null;
            var told = TimeSpan.Zero;
            (string LeaseState, LockOwner? Holder, long Length, int? LeaseSeconds) before;
            while (true)
            {
                before = await HeadAsync(cluster, cancellationToken).ConfigureAwait(false);
                using (var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=lease"), acquire, null, cancellationToken).ConfigureAwait(false))
                {
                    if (r.StatusCode == HttpStatusCode.Created) break;
                    if (r.StatusCode != HttpStatusCode.Conflict || ErrorCode(r) != "LeaseAlreadyPresent")
                        throw await ErrorAsync(r, blob.AbsoluteUri, "take the journal's lease").ConfigureAwait(false);
                }
                var holder = await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false) ?? before.Holder;
                if (limit is null)
                {
                    // The holder's own lease length when it recorded one (another profile may use another), else Azure's maximum.
                    limit = _options.LockWait ?? TimeSpan.FromSeconds(before.LeaseSeconds ?? 60) + LockWaitMargin;
                    if (limit <= TimeSpan.Zero) throw Locked(cluster, holder);
                    waiting?.Invoke($"Another run holds the lease of cluster '{cluster}' on {Describe(cluster)}" + (holder is null ? "" : $" ({holder})")
                        + $". Waiting up to {limit.Value.TotalSeconds:0} s for it to expire: a run that died leaves its lease until then; a live run renews it.");
                }
                if (watch.Elapsed >= limit) throw Locked(cluster, holder, watch.Elapsed);
                if (watch.Elapsed - told >= TimeSpan.FromSeconds(10))
                {
                    told = watch.Elapsed;
                    waiting?.Invoke($"Still waiting for the lease of cluster '{cluster}': {watch.Elapsed.TotalSeconds:0} s of up to {limit.Value.TotalSeconds:0} s.");
                }
                // Polling the lease with a deadline: Azure has no notification of a lease's expiry.
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }

            // A previous holder whose lease ran out (or was broken) without releasing left its name behind: a crashed run.
            var stale = before.LeaseState is "expired" or "broken" or "available" ? before.Holder : null;
            var lease = new BlobLease(this, cluster, leaseId, owner, stale);
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
            var what = $"The journal {blob} ({_credential}) is reachable and writable";
            if (_leases.ContainsKey(cluster)) return what + "; this run holds its lease.";
            if (head.LeaseState == "leased") throw Locked(cluster, head.Holder);
            var probeId = Guid.NewGuid().ToString();
            var acquire = new Dictionary<string, string>
            {
                ["x-ms-lease-action"] = "acquire",
                ["x-ms-lease-duration"] = "15",
                ["x-ms-proposed-lease-id"] = probeId,
            };
            using (var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=lease"), acquire, null, cancellationToken).ConfigureAwait(false))
            {
                if (r.StatusCode == HttpStatusCode.Conflict && ErrorCode(r) == "LeaseAlreadyPresent")
                    throw Locked(cluster, await ReadHolderAsync(cluster, cancellationToken).ConfigureAwait(false) ?? head.Holder);
                if (r.StatusCode != HttpStatusCode.Created) throw await ErrorAsync(r, blob.AbsoluteUri, "take the journal's lease").ConfigureAwait(false);
            }
            await LeaseActionAsync(cluster, "release", probeId, cancellationToken).ConfigureAwait(false);
            return what + $", and its lease (the run lock) can be taken; a crashed run's lease frees itself within {(int)_options.LeaseDuration.TotalSeconds} s.";
        }

        /// <summary>Stops renewing every lease without releasing it: what a crash leaves. The leases expire on their own.</summary>
        public void Dispose()
        {
            foreach (var l in _leases.Values) l.Abandon();
            _http.Dispose();
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

        private async Task CreateBlobIfMissingAsync(string cluster, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            var headers = new Dictionary<string, string> { ["x-ms-blob-type"] = "AppendBlob", ["If-None-Match"] = "*" };
            using var r = await SendAsync(HttpMethod.Put, blob, headers, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created || r.StatusCode == HttpStatusCode.Conflict || r.StatusCode == HttpStatusCode.PreconditionFailed) return;
            throw await ErrorAsync(r, blob.AbsoluteUri, "create the journal blob").ConfigureAwait(false);
        }

        private async Task<(string LeaseState, LockOwner? Holder, long Length, int? LeaseSeconds)> HeadAsync(string cluster, CancellationToken cancellationToken)
        {
            var blob = BlobUri(cluster);
            using var r = await SendAsync(HttpMethod.Head, blob, null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, "read the journal's properties").ConfigureAwait(false);
            LockOwner? holder = null;
            var host = Header(r, "x-ms-meta-ownerhost");
            if (!string.IsNullOrEmpty(host))
            {
                int.TryParse(Header(r, "x-ms-meta-ownerpid"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid);
                holder = new LockOwner(host!, pid);
                if (DateTimeOffset.TryParse(Header(r, "x-ms-meta-ownersince"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var since)) holder.Since = since;
            }
            int? leaseSeconds = int.TryParse(Header(r, "x-ms-meta-ownerleaseseconds"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ls) && ls is >= 15 and <= 60 ? ls : null;
            return (Header(r, "x-ms-lease-state") ?? "", holder, r.Content.Headers.ContentLength ?? 0, leaseSeconds);
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

        private async Task SetHolderAsync(string cluster, string leaseId, LockOwner? owner, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string> { ["x-ms-lease-id"] = leaseId };
            if (owner is not null)
            {
                headers["x-ms-meta-ownerhost"] = Ascii(owner.Host);
                headers["x-ms-meta-ownerpid"] = owner.Pid.ToString(CultureInfo.InvariantCulture);
                headers["x-ms-meta-ownersince"] = owner.Since.UtcDateTime.ToString("o", CultureInfo.InvariantCulture);
                // So a run that finds this lease held knows how long it can last without renewal.
                headers["x-ms-meta-ownerleaseseconds"] = ((int)_options.LeaseDuration.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }
            var blob = BlobUri(cluster);
            using var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=metadata"), headers, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, "record the lock holder").ConfigureAwait(false);
        }

        private static string Ascii(string value) => new string(value.Select(c => c >= 0x20 && c < 0x7f ? c : '_').ToArray());

        internal async Task<HttpStatusCode> LeaseActionAsync(string cluster, string action, string leaseId, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string> { ["x-ms-lease-action"] = action, ["x-ms-lease-id"] = leaseId };
            using var r = await SendAsync(HttpMethod.Put, new Uri(BlobUri(cluster).AbsoluteUri + "?comp=lease"), headers, null, cancellationToken).ConfigureAwait(false);
            if (r.IsSuccessStatusCode) return r.StatusCode;
            throw await ErrorAsync(r, BlobUri(cluster).AbsoluteUri, action + " the journal's lease").ConfigureAwait(false);
        }

        internal async Task ReleaseAsync(BlobLease lease, CancellationToken cancellationToken)
        {
            ((ICollection<KeyValuePair<string, BlobLease>>)_leases).Remove(new KeyValuePair<string, BlobLease>(lease.Cluster, lease));
            // Clear the holder's name first, so the next run does not take a clean release for a crash.
            await SetHolderAsync(lease.Cluster, lease.Id, null, cancellationToken).ConfigureAwait(false);
            await LeaseActionAsync(lease.Cluster, "release", lease.Id, cancellationToken).ConfigureAwait(false);
        }

        private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, IDictionary<string, string>? headers, byte[]? body, CancellationToken cancellationToken)
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.TryAddWithoutValidation("x-ms-version", ApiVersion);
            request.Headers.TryAddWithoutValidation("x-ms-date", DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture));
            if (headers is not null)
                foreach (var h in headers)
                    request.Headers.TryAddWithoutValidation(h.Key, h.Value);
            if (method == HttpMethod.Put) request.Content = new ByteArrayContent(body ?? Array.Empty<byte>());
            await _credential.AuthorizeAsync(request, cancellationToken).ConfigureAwait(false);
            try
            {
                return await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex)
            {
                throw new BbException("JournalStorageUnreachable", BbErrorCategory.ConnectionError,
                    $"Could not reach the journal storage {ContainerUri} ({ex.Message}). Check the account name, network rules and DNS.", ContainerUri.AbsoluteUri, ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new BbException("JournalStorageTimeout", BbErrorCategory.OperationTimeout,
                    $"The journal storage {ContainerUri} did not answer within {_options.RequestTimeout.TotalSeconds:0.#} s.", ContainerUri.AbsoluteUri, ex);
            }
        }

        private static string? Header(HttpResponseMessage r, string name)
        {
            if (r.Headers.TryGetValues(name, out var v)) return v.FirstOrDefault();
            if (r.Content is not null && r.Content.Headers.TryGetValues(name, out var c)) return c.FirstOrDefault();
            return null;
        }

        private static string? ErrorCode(HttpResponseMessage r) => Header(r, "x-ms-error-code");

        private async Task<BbException> ErrorAsync(HttpResponseMessage r, string target, string what)
        {
            var code = ErrorCode(r) ?? "";
            string detail = "";
            if (r.Content is not null && r.RequestMessage?.Method != HttpMethod.Head)
            {
                var body = await r.Content.ReadAsStringAsync().ConfigureAwait(false);
                var start = body.IndexOf("<Message>", StringComparison.Ordinal);
                var end = body.IndexOf("</Message>", StringComparison.Ordinal);
                if (start >= 0 && end > start) detail = body.Substring(start + 9, end - start - 9).Split('\n')[0].Trim();
            }
            var status = $"{(int)r.StatusCode} {code}".Trim() + (detail.Length > 0 ? ": " + detail : "");
            switch (r.StatusCode)
            {
                case HttpStatusCode.Forbidden:
                case HttpStatusCode.Unauthorized:
                    return new BbException("JournalStorageDenied", BbErrorCategory.PermissionDenied,
                        $"Azure Storage refused to {what} at {target} with {_credential} ({status}). Check the key, the SAS (permissions r, a, c, w and its expiry) "
                        + "or the identity's role (Storage Blob Data Contributor on the container).", target);
                case HttpStatusCode.NotFound:
                    return new BbException("JournalStorageNotFound", BbErrorCategory.ObjectNotFound,
                        $"Could not {what}: {target} was not found ({status}). Create the container first (New-AzStorageContainer) and check the URI.", target);
                default:
                    return new BbException("JournalStorageFailed", BbErrorCategory.ProtocolError,
                        $"Azure Storage could not {what} at {target} ({status}).", target);
            }
        }

        /// <summary>The run lock: a lease on the journal blob, renewed in the background until disposed.</summary>
        internal sealed class BlobLease : IJournalLock, IAsyncDisposable
        {
            private readonly AzureBlobJournalStore _store;
            private readonly CancellationTokenSource _stop = new CancellationTokenSource();
            private Task _renewing = Task.CompletedTask;
            private int _state; // 0 held, 1 released or abandoned

            public BlobLease(AzureBlobJournalStore store, string cluster, string id, LockOwner owner, LockOwner? tookOverFrom)
            {
                _store = store;
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

            public void StartRenewing(TimeSpan interval) => _renewing = Task.Run(() => RenewLoopAsync(interval));

            private async Task RenewLoopAsync(TimeSpan interval)
            {
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                        await _store.LeaseActionAsync(Cluster, "renew", Id, _stop.Token).ConfigureAwait(false);
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

            public async ValueTask DisposeAsync()
            {
                if (Interlocked.Exchange(ref _state, 1) == 1) return;
                _stop.Cancel();
                try { await _renewing.ConfigureAwait(false); } catch (OperationCanceledException) { }
                using var cts = new CancellationTokenSource(_store._options.RequestTimeout);
                try
                {
                    await _store.ReleaseAsync(this, cts.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is BbException || ex is OperationCanceledException)
                {
                    // The lease then expires on its own within LeaseDuration; nothing is lost.
                }
            }

            // IJournalLock is IDisposable (the runner's 'using'): release on a pool thread so no caller's
            // synchronisation context can deadlock, bounded by the request timeout.
            public void Dispose() => Task.Run(() => DisposeAsync().AsTask()).GetAwaiter().GetResult();
        }
    }
}
