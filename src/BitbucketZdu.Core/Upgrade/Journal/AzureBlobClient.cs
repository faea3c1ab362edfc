using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// The Blob REST calls the journal needs, over System.Net.Http only (no Azure SDK: it would conflict with the Az
    /// modules loaded in a runbook): container and append-blob creation, get, head, metadata, append block and the
    /// lease actions, each signed by an <see cref="AzureStorageCredential"/> (Shared Key, SAS or bearer token). It knows
    /// nothing of journals: what a status or error code means for the run lock is <see cref="AzureBlobJournalStore"/>'s.
    /// </summary>
    internal sealed class AzureBlobClient : IDisposable
    {
        internal const string ApiVersion = "2021-12-02";

        private readonly HttpClient _http;
        private readonly TimeSpan _requestTimeout;

        /// <param name="containerUri">The container, absolute, without a query (checked by the caller).</param>
        /// <param name="handler">The HTTP handler (owned by the client); null for a default one that verifies TLS.</param>
        public AzureBlobClient(Uri containerUri, AzureStorageCredential credential, TimeSpan requestTimeout, HttpMessageHandler? handler)
        {
            ContainerUri = new Uri(containerUri.GetLeftPart(UriPartial.Path).TrimEnd('/'));
            Credential = credential;
            _requestTimeout = requestTimeout;
            // The journal's storage: system TLS trust, no redirects (a SAS in the query must not follow to another host).
            var policy = new Http.HttpPolicy { Name = "journal", Timeout = requestTimeout, Diagnostics = Api.ZduDiagnostics.Ambient };
            _http = handler is null ? Http.HttpClientFactory.Create(policy) : Http.HttpClientFactory.Create(policy, handler);
        }

        public Uri ContainerUri { get; }

        /// <summary>For messages: says the kind of credential, never its secret.</summary>
        public AzureStorageCredential Credential { get; }

        public Uri BlobUri(string blobName) =>
            new Uri(ContainerUri.AbsoluteUri + "/" + string.Join("/", blobName.Split('/').Select(Uri.EscapeDataString)));

        public async Task CreateContainerIfMissingAsync(CancellationToken cancellationToken)
        {
            using var r = await SendAsync(HttpMethod.Put, new Uri(ContainerUri.AbsoluteUri + "?restype=container"), null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created || r.StatusCode == HttpStatusCode.Conflict) return;
            throw await ErrorAsync(r, ContainerUri.AbsoluteUri, "create the container").ConfigureAwait(false);
        }

        /// <summary>Creates an empty append blob unless one exists (If-None-Match: *).</summary>
        public async Task CreateAppendBlobIfMissingAsync(Uri blob, string what, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string> { ["x-ms-blob-type"] = "AppendBlob", ["If-None-Match"] = "*" };
            using var r = await SendAsync(HttpMethod.Put, blob, headers, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created || r.StatusCode == HttpStatusCode.Conflict || r.StatusCode == HttpStatusCode.PreconditionFailed) return;
            throw await ErrorAsync(r, blob.AbsoluteUri, what).ConfigureAwait(false);
        }

        /// <summary>The blob's bytes; null when it does not exist.</summary>
        public async Task<byte[]?> GetAsync(Uri blob, string what, CancellationToken cancellationToken)
        {
            using var r = await SendAsync(HttpMethod.Get, blob, null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.NotFound && ErrorCode(r) == "BlobNotFound") return null;
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, what).ConfigureAwait(false);
            return await r.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        }

        /// <summary>The blob's properties: lease state, metadata (by name without <c>x-ms-meta-</c>), length.</summary>
        public async Task<BlobProperties> HeadAsync(Uri blob, string what, CancellationToken cancellationToken)
        {
            using var r = await SendAsync(HttpMethod.Head, blob, null, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, what).ConfigureAwait(false);
            var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var h in r.Headers)
                if (h.Key.StartsWith("x-ms-meta-", StringComparison.OrdinalIgnoreCase))
                    metadata[h.Key.Substring("x-ms-meta-".Length)] = h.Value.FirstOrDefault() ?? "";
            return new BlobProperties(Header(r, "x-ms-lease-state") ?? "", metadata, r.Content.Headers.ContentLength ?? 0);
        }

        /// <summary>Replaces the blob's metadata (names without <c>x-ms-meta-</c>, ASCII values); <paramref name="leaseId"/> when leased.</summary>
        public async Task SetMetadataAsync(Uri blob, string? leaseId, IReadOnlyDictionary<string, string> metadata, string what, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string>();
            if (leaseId is not null) headers["x-ms-lease-id"] = leaseId;
            foreach (var m in metadata) headers["x-ms-meta-" + m.Key] = m.Value;
            using var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=metadata"), headers, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(r, blob.AbsoluteUri, what).ConfigureAwait(false);
        }

        /// <summary>
        /// Append Block, conditioned on the lease (when <paramref name="leaseId"/> is set) and on the blob's length (when
        /// <paramref name="appendPosition"/> is). Success: the offset the block went to. Refused: the service's error code,
        /// for the caller to interpret; <see cref="BlobResult.Error"/> builds the generic error.
        /// </summary>
        public async Task<BlobResult> AppendBlockAsync(Uri blob, byte[] bytes, string? leaseId, long? appendPosition, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string>();
            if (leaseId is not null) headers["x-ms-lease-id"] = leaseId;
            if (appendPosition is long p) headers["x-ms-blob-condition-appendpos"] = p.ToString(CultureInfo.InvariantCulture);
            using var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=appendblock"), headers, bytes, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created)
                return BlobResult.Success(long.TryParse(Header(r, "x-ms-blob-append-offset"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var o) ? o : (long?)null);
            return BlobResult.Failure(ErrorCode(r), await ErrorAsync(r, blob.AbsoluteUri, "append to the journal").ConfigureAwait(false));
        }

        /// <summary>Acquire Lease with a proposed id. Refused (e.g. 409 LeaseAlreadyPresent): the error code, for the caller.</summary>
        public async Task<BlobResult> AcquireLeaseAsync(Uri blob, int durationSeconds, string proposedLeaseId, string what, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string>
            {
                ["x-ms-lease-action"] = "acquire",
                ["x-ms-lease-duration"] = durationSeconds.ToString(CultureInfo.InvariantCulture),
                ["x-ms-proposed-lease-id"] = proposedLeaseId,
            };
            using var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=lease"), headers, null, cancellationToken).ConfigureAwait(false);
            if (r.StatusCode == HttpStatusCode.Created) return BlobResult.Success(null);
            return BlobResult.Failure(r.StatusCode == HttpStatusCode.Conflict ? ErrorCode(r) : null, await ErrorAsync(r, blob.AbsoluteUri, what).ConfigureAwait(false));
        }

        public Task RenewLeaseAsync(Uri blob, string leaseId, CancellationToken cancellationToken) => LeaseActionAsync(blob, "renew", leaseId, cancellationToken);

        public Task ReleaseLeaseAsync(Uri blob, string leaseId, CancellationToken cancellationToken) => LeaseActionAsync(blob, "release", leaseId, cancellationToken);

        private async Task LeaseActionAsync(Uri blob, string action, string leaseId, CancellationToken cancellationToken)
        {
            var headers = new Dictionary<string, string> { ["x-ms-lease-action"] = action, ["x-ms-lease-id"] = leaseId };
            using var r = await SendAsync(HttpMethod.Put, new Uri(blob.AbsoluteUri + "?comp=lease"), headers, null, cancellationToken).ConfigureAwait(false);
            if (r.IsSuccessStatusCode) return;
            throw await ErrorAsync(r, blob.AbsoluteUri, action + " the journal's lease").ConfigureAwait(false);
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
            await Credential.AuthorizeAsync(request, cancellationToken).ConfigureAwait(false);
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
                    $"The journal storage {ContainerUri} did not answer within {_requestTimeout.TotalSeconds:0.#} s.", ContainerUri.AbsoluteUri, ex);
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
                        $"Azure Storage refused to {what} at {target} with {Credential} ({status}). Check the key, the SAS (permissions r, a, c, w and its expiry) "
                        + "or the identity's role (Storage Blob Data Contributor on the container).", target);
                case HttpStatusCode.NotFound:
                    return new BbException("JournalStorageNotFound", BbErrorCategory.ObjectNotFound,
                        $"Could not {what}: {target} was not found ({status}). Create the container first (New-AzStorageContainer) and check the URI.", target);
                default:
                    return new BbException("JournalStorageFailed", BbErrorCategory.ProtocolError,
                        $"Azure Storage could not {what} at {target} ({status}).", target);
            }
        }

        public void Dispose() => _http.Dispose();
    }

    /// <summary>A blob's properties from a HEAD.</summary>
    internal sealed class BlobProperties
    {
        public BlobProperties(string leaseState, IReadOnlyDictionary<string, string> metadata, long length)
        {
            LeaseState = leaseState;
            Metadata = metadata;
            Length = length;
        }

        /// <summary><c>available</c>, <c>leased</c>, <c>expired</c>, <c>breaking</c> or <c>broken</c>.</summary>
        public string LeaseState { get; }
        public IReadOnlyDictionary<string, string> Metadata { get; }
        public long Length { get; }

        public string? Meta(string name) => Metadata.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>The outcome of a call whose refusals the caller interprets: the append offset, or the error code and the generic error.</summary>
    internal sealed class BlobResult
    {
        private BlobResult(bool ok, long? appendOffset, string? errorCode, BbException? error)
        {
            Ok = ok;
            AppendOffset = appendOffset;
            ErrorCode = errorCode;
            Error = error;
        }

        public bool Ok { get; }
        public long? AppendOffset { get; }
        public string? ErrorCode { get; }

        /// <summary>The error to throw when the caller has no better one for <see cref="ErrorCode"/>.</summary>
        public BbException? Error { get; }

        public static BlobResult Success(long? appendOffset) => new BlobResult(true, appendOffset, null, null);
        public static BlobResult Failure(string? errorCode, BbException error) => new BlobResult(false, null, errorCode, error);
    }
}
