using System;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Rules;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// HTTP client for /rest/zdu. Sends the headers Bitbucket wants (JSON Accept, XSRF no-check on POSTs, a
    /// non-browser User-Agent) and turns every failure into a <see cref="ZduApiException"/> whose message names the
    /// URL and the server's own words, never a credential.
    /// <para>GETs are retried on transient faults (refused/reset connections, per-attempt timeouts, 502/503/504,
    /// 429 honouring Retry-After) with jittered exponential backoff under <see cref="ZduClientOptions.RetryDeadline"/>.
    /// POSTs are sent once; after an ambiguous failure the cluster is re-read to learn whether the transition happened.</para>
    /// </summary>
    public sealed class ZduClient : IZduClient
    {
        private const string ApiPath = "rest/zdu/";
        private readonly HttpClient _http;
        private readonly ZduClientOptions _options;
        private readonly ZduTls? _tls;

        public ZduClient(ZduClientOptions options)
            : this(options ?? throw new ArgumentNullException(nameof(options)), ZduTls.Create(options))
        {
        }

        private ZduClient(ZduClientOptions options, ZduTls tls)
            : this(options, tls.Handler, ownsHandler: true)
        {
            _tls = tls;
        }

        /// <summary>For tests and custom transports: the handler is used as given.</summary>
        public ZduClient(ZduClientOptions options, HttpMessageHandler handler, bool ownsHandler)
        {
            _options = options ?? throw new ArgumentNullException(nameof(options));
            // Timed per attempt by the retry pipeline, so the client itself has no timeout.
            _http = Http.HttpClientFactory.Create(new Http.HttpPolicy { Name = "bitbucket", Timeout = System.Threading.Timeout.InfiniteTimeSpan }, handler, ownsHandler);
        }

        public Uri BaseUri => _options.BaseUri;

        public ZduClientOptions Options => _options;

        public Task<ZduCluster> GetClusterAsync(CancellationToken cancellationToken = default) =>
            GetAsync("cluster", ParseClusterStrict, null, cancellationToken);

        public Task<ZduStateResponse> GetStateAsync(CancellationToken cancellationToken = default) =>
            GetAsync("state", ZduJson.ParseState, null, cancellationToken);

        public Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken cancellationToken = default)
        {
            if (string.IsNullOrWhiteSpace(nodeId)) throw new ArgumentException("A node id is required.", nameof(nodeId));
            return GetAsync("nodes/" + Uri.EscapeDataString(nodeId), ZduJson.ParseNode,
                $"There is no node with id '{nodeId}'. Node ids may change when a node restarts: list the current ones with Get-BbNode (GET /rest/zdu/cluster).",
                cancellationToken);
        }

        public Task<ZduCluster> StartAsync(CancellationToken cancellationToken = default) => PostActionAsync(ZduAction.Start, cancellationToken);

        public Task<ZduCluster> CancelAsync(CancellationToken cancellationToken = default) => PostActionAsync(ZduAction.Cancel, cancellationToken);

        public Task<ZduCluster> ApproveAsync(CancellationToken cancellationToken = default) => PostActionAsync(ZduAction.Approve, cancellationToken);

        public Task<ZduCluster> RetryUpgradeAsync(CancellationToken cancellationToken = default) => PostActionAsync(ZduAction.RetryUpgrade, cancellationToken);

        internal Uri ResolveUri(string relativePath) => new Uri(_options.BaseUri, ApiPath + relativePath);

        private void Diag(string message) => ZduDiagnostics.Write(_options, message);

        // ---------------------------------------------------------------- GET with retries

        private async Task<T> GetAsync<T>(string path, Func<string, T> parse, string? notFoundHint, CancellationToken cancellationToken)
        {
            var uri = ResolveUri(path);
            var attempts = 0;
            string? lastFailure = null;
            var clock = Stopwatch.StartNew();
            var pipeline = BuildGetPipeline(uri, cancellationToken, f => lastFailure = f);
            HttpResponseMessage response;
            try
            {
                response = await pipeline.ExecuteAsync(async token =>
                {
                    attempts++;
                    using var request = BuildRequest(HttpMethod.Get, uri);
                    return await SendTimedAsync(request, token).ConfigureAwait(false);
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when ((ex is TimeoutRejectedException || ex is OperationCanceledException) && !cancellationToken.IsCancellationRequested)
            {
                var tried = attempts == 1 ? "1 attempt" : $"{attempts} attempts";
                var message = clock.Elapsed >= _options.RetryDeadline - TimeSpan.FromMilliseconds(20)
                    ? $"GET {uri} did not succeed within the retry deadline of {Seconds(_options.RetryDeadline)} ({tried}; last failure: {lastFailure ?? "no answer"})."
                    : $"GET {uri} did not answer within {Seconds(_options.RequestTimeout)} ({tried}).";
                throw new ZduApiException(ZduErrorKind.Timeout, message + " Check that Bitbucket is up and reachable from here, or raise -TimeoutSec.", uri, inner: ex);
            }
            catch (HttpRequestException ex)
            {
                throw TransportFailure(HttpMethod.Get, uri, ex, attempts);
            }
            return await ReadAsync(HttpMethod.Get, uri, response, parse, notFoundHint, attempts).ConfigureAwait(false);
        }

        private ResiliencePipeline<HttpResponseMessage> BuildGetPipeline(Uri uri, CancellationToken userToken, Action<string> recordFailure)
        {
            var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
            builder.AddTimeout(new TimeoutStrategyOptions { Timeout = Clamp(_options.RetryDeadline) });
            if (_options.MaxRetries > 0)
            {
                builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
                {
                    MaxRetryAttempts = _options.MaxRetries,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = _options.RetryBaseDelay,
                    MaxDelay = _options.MaxRetryDelay,
                    ShouldHandle = args => new ValueTask<bool>(!userToken.IsCancellationRequested && IsTransient(args.Outcome)),
                    DelayGenerator = args => new ValueTask<TimeSpan?>(RetryAfter(args.Outcome.Result)),
                    OnRetry = args =>
                    {
                        var failure = Describe(args.Outcome);
                        recordFailure(failure);
                        args.Outcome.Result?.Dispose();
                        Diag($"GET {uri}: {failure}; retry {args.AttemptNumber + 1} of {_options.MaxRetries} in {args.RetryDelay.TotalMilliseconds:0} ms.");
                        return default;
                    },
                });
            }
            builder.AddTimeout(new TimeoutStrategyOptions { Timeout = Clamp(_options.RequestTimeout) });
            return builder.Build();
        }

        private static TimeSpan Clamp(TimeSpan t) =>
            t < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : t > TimeSpan.FromHours(24) ? TimeSpan.FromHours(24) : t;

        internal static bool IsTransient(Outcome<HttpResponseMessage> outcome)
        {
            if (outcome.Exception is TimeoutRejectedException) return true;
            if (outcome.Exception is HttpRequestException hre) return !ZduTls.IsTlsFailure(hre);
            if (outcome.Result is { } r)
            {
                var code = (int)r.StatusCode;
                return code == 429 || code == 502 || code == 503 || code == 504 || code == 408;
            }
            return false;
        }

        private TimeSpan? RetryAfter(HttpResponseMessage? response)
        {
            var delay = Timing.RetryAfter.Of(response);
            return delay > _options.MaxRetryDelay ? _options.MaxRetryDelay : delay;
        }

        private static string Describe(Outcome<HttpResponseMessage> outcome)
        {
            if (outcome.Exception is TimeoutRejectedException t) return $"no answer within {Seconds(t.Timeout)}";
            if (outcome.Exception is { } ex) return Innermost(ex).Message;
            var r = outcome.Result!;
            var retryAfter = r.Headers.RetryAfter is { } ra ? $" (Retry-After {ra})" : string.Empty;
            return $"{(int)r.StatusCode} {r.ReasonPhrase}{retryAfter}";
        }

        // ---------------------------------------------------------------- POST, fallback, reconciliation

        private async Task<ZduCluster> PostActionAsync(ZduAction action, CancellationToken cancellationToken)
        {
            var relation = ZduStateRules.RelationOf(action);
            try
            {
                return await PostWithFallbackAsync(relation, cancellationToken).ConfigureAwait(false);
            }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.InvalidState && !cancellationToken.IsCancellationRequested)
            {
                throw await ExplainConflictAsync(ex, action, cancellationToken).ConfigureAwait(false);
            }
            catch (ZduApiException ex) when (ex.Ambiguous && !cancellationToken.IsCancellationRequested)
            {
                return await ReconcileAsync(ex, action, cancellationToken).ConfigureAwait(false);
            }
        }

        private async Task<ZduCluster> PostWithFallbackAsync(string relation, CancellationToken cancellationToken)
        {
            var uri = ResolveUri(relation);
            try
            {
                return await PostOnceAsync(uri, cancellationToken).ConfigureAwait(false);
            }
            catch (ZduApiException ex) when (ex.Kind == ZduErrorKind.NotFound && _options.LegacyActionPathFallback)
            {
                var legacy = ResolveUri("cluster/" + relation);
                Diag($"POST {uri} returned 404; trying the path of the 7.x how-to pages, {legacy}.");
                try
                {
                    return await PostOnceAsync(legacy, cancellationToken).ConfigureAwait(false);
                }
                catch (ZduApiException legacyError) when (legacyError.Kind == ZduErrorKind.NotFound)
                {
                    throw new ZduApiException(ZduErrorKind.NotFound,
                        $"POST {uri} returned 404 and so did {legacy}: this server has no '{relation}' action (older Bitbucket, or not Bitbucket Data Center at this base URL). Check -Uri and the Bitbucket version.",
                        uri, 404, ex.ServerMessages, ex);
                }
            }
        }

        /// <summary>One HTTP exchange, reported to <see cref="ZduDiagnostics"/> (method, path, status, elapsed) whatever its outcome.</summary>
        private async Task<HttpResponseMessage> SendTimedAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
                await BufferBoundedAsync(request.Method, request.RequestUri!, response, cancellationToken).ConfigureAwait(false);
                ZduDiagnostics.Completed(_options, new ZduRequestRecord(request.Method.Method, request.RequestUri!, (int)response.StatusCode, clock.Elapsed, null));
                return response;
            }
            catch (Exception ex)
            {
                var failure = ex is OperationCanceledException ? (cancellationToken.IsCancellationRequested ? "cancelled or timed out" : "timed out") : ex.GetType().Name;
                ZduDiagnostics.Completed(_options, new ZduRequestRecord(request.Method.Method, request.RequestUri!, null, clock.Elapsed, failure));
                throw;
            }
        }

        private async Task<ZduCluster> PostOnceAsync(Uri uri, CancellationToken cancellationToken)
        {
            using var request = BuildRequest(HttpMethod.Post, uri);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.RequestTimeout);
            HttpResponseMessage response;
            try
            {
                response = await SendTimedAsync(request, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ZduApiException(ZduErrorKind.Timeout,
                    $"POST {uri} did not answer within {Seconds(_options.RequestTimeout)}.", uri, inner: ex) { Ambiguous = true };
            }
            catch (HttpRequestException ex)
            {
                var error = TransportFailure(HttpMethod.Post, uri, ex, 1);
                error.Ambiguous = !ZduTls.WasNotSent(ex);
                throw error;
            }
            return await ReadAsync(HttpMethod.Post, uri, response, ParseClusterStrict, null, 1).ConfigureAwait(false);
        }

        private async Task<ZduApiException> ExplainConflictAsync(ZduApiException conflict, ZduAction action, CancellationToken cancellationToken)
        {
            var (cluster, readError) = await TryReadClusterAsync(cancellationToken).ConfigureAwait(false);
            if (cluster is null)
                return Follow(conflict, ZduErrorKind.InvalidState, $"{conflict.Message} Re-reading the cluster to say why failed as well: {readError!.Message}", null);
            var verdict = ZduStateRules.Check(cluster, action);
            return Follow(conflict, ZduErrorKind.InvalidState,
                $"POST {conflict.RequestUri} returned 409 Conflict: Bitbucket refused to {Verb(action)} in the cluster's current state. {ZduStateRules.DescribeCluster(cluster)}"
                + (verdict.Allowed ? " (The cluster allows it now: its state changed meanwhile; try again.)" : " " + verdict.Reason),
                cluster);
        }

        private async Task<ZduCluster> ReconcileAsync(ZduApiException failure, ZduAction action, CancellationToken cancellationToken)
        {
            var what = ZduStateRules.RelationOf(action);
            Diag($"{failure.Message} The request may have reached Bitbucket: re-reading the cluster to learn whether the {what} took effect (it is not sent again).");
            var (cluster, readError) = await TryReadClusterAsync(cancellationToken).ConfigureAwait(false);
            if (cluster is null)
                throw Follow(failure, ZduErrorKind.OutcomeUnknown,
                    $"{failure.Message} Whether the {what} took effect is unknown: re-reading the cluster failed too ({readError!.Message}). Check with Get-BbClusterStatus before trying again.", null);
            if (TookEffect(action, cluster))
            {
                Diag($"The cluster shows the {what} took effect despite the failure: {cluster.StateText}, upgrade mode {(cluster.UpgradeModeEnabled ? "on" : "off")}.");
                return cluster;
            }
            throw Follow(failure, failure.Kind,
                $"{failure.Message} The {what} did not take effect: re-reading shows it did not happen. {ZduStateRules.DescribeCluster(cluster)} It is safe to try again once Bitbucket answers normally.",
                cluster);
        }

        private async Task<(ZduCluster? Cluster, ZduApiException? Error)> TryReadClusterAsync(CancellationToken cancellationToken)
        {
            try
            {
                return (await GetClusterAsync(cancellationToken).ConfigureAwait(false), null);
            }
            catch (ZduApiException ex)
            {
                return (null, ex);
            }
        }

        /// <summary>A follow-up error for <paramref name="original"/>: same URL, status and server messages, a fuller message.</summary>
        private static ZduApiException Follow(ZduApiException original, ZduErrorKind kind, string message, ZduCluster? cluster) =>
            new ZduApiException(kind, message, original.RequestUri, original.StatusCode, original.ServerMessages, original) { Cluster = cluster };

        /// <summary>Whether <paramref name="cluster"/>, read after an ambiguous failure, shows that <paramref name="action"/> happened.</summary>
        public static bool TookEffect(ZduAction action, ZduCluster cluster) => action switch
        {
            ZduAction.Start => cluster.UpgradeModeEnabled,
            ZduAction.Cancel => !cluster.UpgradeModeEnabled,
            ZduAction.Approve => !cluster.UpgradeModeEnabled && (cluster.State == ClusterState.STABLE
                || cluster.State == ClusterState.RUNNING_UPGRADE_TASKS || cluster.State == ClusterState.UPGRADE_TASKS_FAILED),
            _ => cluster.State == ClusterState.RUNNING_UPGRADE_TASKS || cluster.State == ClusterState.STABLE,
        };

        private static string Verb(ZduAction action) => action switch
        {
            ZduAction.Start => "enable upgrade mode (start)",
            ZduAction.Cancel => "disable upgrade mode (cancel)",
            ZduAction.Approve => "finalize the upgrade (approve)",
            _ => "retry the finalization tasks (retryUpgrade)",
        };

        // ---------------------------------------------------------------- common

        /// <summary>
        /// Reads the body into memory, at most <see cref="ZduClientOptions.MaxResponseBytes"/>: a larger answer (a
        /// misrouted download, a runaway proxy page) is refused before it fills memory. A connection that breaks while
        /// reading becomes an <see cref="HttpRequestException"/> like one that breaks before the headers.
        /// </summary>
        private async Task BufferBoundedAsync(HttpMethod method, Uri uri, HttpResponseMessage response, CancellationToken cancellationToken)
        {
            var content = response.Content;
            if (content is null) return;
            var max = _options.MaxResponseBytes;
            if (content.Headers.ContentLength is long declared && declared > max)
            {
                response.Dispose();
                throw TooLarge(method, uri, (int)response.StatusCode, $"it declares {declared} bytes");
            }
            var buffer = new System.IO.MemoryStream();
            try
            {
                using var stream = await content.ReadAsStreamAsync().ConfigureAwait(false);
                var chunk = new byte[16 * 1024];
                int read;
                while ((read = await stream.ReadAsync(chunk, 0, chunk.Length, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (buffer.Length + read > max)
                    {
                        response.Dispose();
                        throw TooLarge(method, uri, (int)response.StatusCode, "it goes on past that");
                    }
                    buffer.Write(chunk, 0, read);
                }
            }
            catch (System.IO.IOException ex)
            {
                response.Dispose();
                throw new HttpRequestException($"The connection broke while reading the answer: {Innermost(ex).Message}", ex);
            }
            var copy = new ByteArrayContent(buffer.ToArray());
            foreach (var header in content.Headers) copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
            copy.Headers.ContentLength = buffer.Length;
            response.Content = copy;
            content.Dispose();
        }

        private ZduApiException TooLarge(HttpMethod method, Uri uri, int status, string why) =>
            new ZduApiException(ZduErrorKind.ResponseTooLarge,
                $"{method} {uri} answered {status} with more than {_options.MaxResponseBytes} bytes ({why}); the client reads at most that much. "
                + "That is not a rolling-upgrade answer: check that -Uri points at Bitbucket and not at a download, a proxy or another product.",
                uri, status);

        private async Task<T> ReadAsync<T>(HttpMethod method, Uri uri, HttpResponseMessage response, Func<string, T> parse, string? notFoundHint, int attempts)
        {
            using (response)
            {
                var body = response.Content is null ? string.Empty : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                // A proxy or server that echoes our request (error pages often do) must not carry the secret into a message.
                body = _options.Credential.Redact(body);
                var status = (int)response.StatusCode;
                if (status >= 300 && status < 400)
                    throw ZduErrorTranslator.Redirect(method, uri, response);
                if (!response.IsSuccessStatusCode)
                {
                    var error = ZduErrorTranslator.FromResponse(method, uri, response, body, _options.Credential.IsBearerToken, notFoundHint, attempts);
                    // approve is documented to answer 500 (zdu-api.md §1), and a 500 may come after the transition took
                    // effect: re-read the cluster rather than report a failure that did not happen.
                    error.Ambiguous = method == HttpMethod.Post && (status == 500 || status == 502 || status == 503 || status == 504);
                    throw error;
                }
                try
                {
                    return parse(body);
                }
                catch (Exception ex) when (ex is JsonException || ex is FormatException)
                {
                    throw ZduErrorTranslator.UnexpectedBody(method, uri, response, body, ex);
                }
            }
        }

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _warned = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();

        /// <summary>Parses a cluster answer; what the parser tolerated is said once per client as a warning.</summary>
        private ZduCluster ParseClusterStrict(string body)
        {
            var cluster = ZduJson.ParseClusterStrict(body);
            foreach (var warning in cluster.Warnings)
                if (_warned.TryAdd(warning, true)) ZduDiagnostics.Warn(_options, warning);
            return cluster;
        }

        private ZduApiException TransportFailure(HttpMethod method, Uri uri, HttpRequestException ex, int attempts)
        {
            var after = attempts > 1 ? $" (after {attempts} attempts)" : string.Empty;
            if (ZduTls.IsProxyAuthFailure(ex))
                return new ZduApiException(ZduErrorKind.ProxyAuthenticationRequired,
                    ZduErrorTranslator.ProxyAuthMessage($"{method} {uri}: the proxy refused to connect to Bitbucket ({Innermost(ex).Message})."), uri, 407, inner: ex);
            if (ZduTls.IsTlsFailure(ex))
            {
                var why = _tls?.LastFailure is { } f ? $" ({f})" : string.Empty;
                return new ZduApiException(ZduErrorKind.CertificateUntrusted,
                    $"{method} {uri}: the server's TLS certificate is not trusted{why}. If Bitbucket uses an internal CA, pass its certificate with -TrustedCertificatePath; -SkipCertificateCheck turns verification off (unsafe, test servers only).",
                    uri, inner: ex);
            }
            return new ZduApiException(ZduErrorKind.Unreachable, $"Cannot reach {uri}{after}: {Innermost(ex).Message}", uri, inner: ex);
        }

        private HttpRequestMessage BuildRequest(HttpMethod method, Uri uri)
        {
            var request = new HttpRequestMessage(method, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            request.Headers.TryAddWithoutValidation("User-Agent", _options.UserAgent);
            request.Headers.TryAddWithoutValidation("Authorization", _options.Credential.CreateAuthorizationHeader());
            if (method == HttpMethod.Post)
            {
                // Bitbucket's XSRF filter refuses POSTs without this header; the resource consumes JSON.
                request.Headers.TryAddWithoutValidation("X-Atlassian-Token", "no-check");
                request.Content = new ByteArrayContent(Array.Empty<byte>());
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }
            return request;
        }

        internal static HttpMessageHandler CreateHandler(ZduClientOptions options) => ZduTls.Create(options).Handler;

        private static string Seconds(TimeSpan t) => t.TotalSeconds >= 1 ? $"{t.TotalSeconds:0.#} s" : $"{t.TotalMilliseconds:0} ms";

        internal static Exception Innermost(Exception ex)
        {
            while (ex.InnerException is not null) ex = ex.InnerException;
            return ex;
        }

        public void Dispose() => _http.Dispose();
    }
}
