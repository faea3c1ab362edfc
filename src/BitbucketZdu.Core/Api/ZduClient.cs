using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// HTTP client for /rest/zdu. Sends the headers Bitbucket wants (JSON Accept, XSRF no-check on POSTs, a
    /// non-browser User-Agent) and turns every failure into a <see cref="ZduApiException"/> whose message names the
    /// URL and the server's own words, never a credential.
    /// </summary>
    public sealed class ZduClient : IZduClient
    {
        private const string ApiPath = "rest/zdu/";
        private readonly HttpClient _http;
        private readonly bool _ownsHttp;
        private readonly ZduClientOptions _options;

        public ZduClient(ZduClientOptions options)
            : this(options, CreateHandler(options), ownsHandler: true)
        {
        }

        /// <summary>For tests and custom transports: the handler is used as given.</summary>
        public ZduClient(ZduClientOptions options, HttpMessageHandler handler, bool ownsHandler)
        {
            _options = options ?? throw new ArgumentNullException(nameof(options));
            _http = new HttpClient(handler, ownsHandler) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            _ownsHttp = true;
        }

        public Uri BaseUri => _options.BaseUri;

        public ZduClientOptions Options => _options;

        public Task<ZduCluster> GetClusterAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Get, "cluster", ZduJson.ParseCluster, cancellationToken);

        public Task<ZduStateResponse> GetStateAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Get, "state", ZduJson.ParseState, cancellationToken);

        public Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken cancellationToken = default)
        {
            if (string.IsNullOrWhiteSpace(nodeId)) throw new ArgumentException("A node id is required.", nameof(nodeId));
            return SendAsync(HttpMethod.Get, "nodes/" + Uri.EscapeDataString(nodeId), ZduJson.ParseNode, cancellationToken);
        }

        public Task<ZduCluster> StartAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Post, "start", ZduJson.ParseCluster, cancellationToken);

        public Task<ZduCluster> CancelAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Post, "cancel", ZduJson.ParseCluster, cancellationToken);

        public Task<ZduCluster> ApproveAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Post, "approve", ZduJson.ParseCluster, cancellationToken);

        public Task<ZduCluster> RetryUpgradeAsync(CancellationToken cancellationToken = default) =>
            SendAsync(HttpMethod.Post, "retryUpgrade", ZduJson.ParseCluster, cancellationToken);

        internal Uri ResolveUri(string relativePath) => new Uri(_options.BaseUri, ApiPath + relativePath);

        private async Task<T> SendAsync<T>(HttpMethod method, string path, Func<string, T> parse, CancellationToken cancellationToken)
        {
            var uri = ResolveUri(path);
            using var request = BuildRequest(method, uri);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.RequestTimeout);
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ZduApiException(ZduErrorKind.Timeout,
                    $"{method} {uri} did not answer within {_options.RequestTimeout.TotalSeconds:0.#} s.", uri);
            }
            catch (HttpRequestException ex)
            {
                throw new ZduApiException(ZduErrorKind.Unreachable,
                    $"Cannot reach {uri}: {Innermost(ex).Message}", uri, inner: ex);
            }

            using (response)
            {
                var body = response.Content is null ? string.Empty : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw ZduErrorTranslator.FromResponse(method, uri, response, body, _options.Credential.IsBearerToken);
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

        internal static HttpMessageHandler CreateHandler(ZduClientOptions options)
        {
            var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false };
            if (options.SkipCertificateCheck)
                handler.ServerCertificateCustomValidationCallback = (_, _, _, _) => true;
            return handler;
        }

        private static Exception Innermost(Exception ex)
        {
            while (ex.InnerException is not null) ex = ex.InnerException;
            return ex;
        }

        public void Dispose()
        {
            if (_ownsHttp) _http.Dispose();
        }
    }
}
