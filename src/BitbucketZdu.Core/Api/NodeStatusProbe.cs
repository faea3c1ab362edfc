using System;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Api
{
    /// <summary>Where a node's own URLs are: every join of a node URL goes through here, so a context path is kept.</summary>
    public static class NodeUrls
    {
        /// <summary>
        /// The node's base URL ending in '/': <c>http://node1:7990/bitbucket</c> (as Atlassian writes it) becomes
        /// <c>http://node1:7990/bitbucket/</c>; <c>new Uri(base, "status")</c> on the first would drop "bitbucket".
        /// </summary>
        public static Uri Base(Uri nodeUrl)
        {
            if (nodeUrl is null) throw new ArgumentNullException(nameof(nodeUrl));
            var text = nodeUrl.GetLeftPart(UriPartial.Path);
            return new Uri(text.EndsWith("/", StringComparison.Ordinal) ? text : text + "/");
        }

        /// <summary><paramref name="relative"/> (no leading '/') under the node's base URL, context path kept.</summary>
        public static Uri Resolve(Uri nodeUrl, string relative) => new Uri(Base(nodeUrl), relative.TrimStart('/'));

        /// <summary>The node's /status, under its context path.</summary>
        public static Uri Status(Uri nodeUrl) => Resolve(nodeUrl, "status");

        /// <summary>A node's URL from its host, server.port and server.context-path (null or "" for the root).</summary>
        public static Uri FromParts(string host, int port, string? contextPath, string scheme = "http")
        {
            var h = host.Contains(":") && !host.StartsWith("[", StringComparison.Ordinal) ? "[" + host + "]" : host;
            var path = string.IsNullOrEmpty(contextPath) ? "/" : "/" + contextPath!.Trim('/') + "/";
            return new Uri($"{scheme}://{h}:{port}{path}");
        }
    }

    /// <summary>What a node's /status answered (Atlassian KB "How to monitor if Bitbucket Server is up and running").</summary>
    public sealed class NodeStatus
    {
        /// <summary>The JSON state (STARTING, FIRST_RUN, RUNNING, MAINTENANCE, ERROR, STOPPING, ...); null without JSON.</summary>
        public string? State { get; set; }
        /// <summary>The HTTP status; null when no answer came.</summary>
        public int? HttpStatus { get; set; }
        /// <summary>Set when no answer came (refused, timed out, TLS failure): why.</summary>
        public string? Failure { get; set; }
        /// <summary>The node's certificate is not trusted: waiting will not change that.</summary>
        public bool CertificateUntrusted { get; set; }
        /// <summary>The proxy refused us with 407: waiting will not change that.</summary>
        public bool ProxyAuthenticationRequired { get; set; }

        /// <summary>Ready for requests: HTTP 200 and RUNNING.</summary>
        public bool IsRunning => HttpStatus == 200 && Is("RUNNING");
        public bool IsError => Is("ERROR");
        public bool IsFirstRun => Is("FIRST_RUN");

        private bool Is(string state) => string.Equals(State, state, StringComparison.OrdinalIgnoreCase);

        /// <summary>For messages and "last seen": the state and what it means.</summary>
        public override string ToString()
        {
            if (Failure is not null) return "no answer (" + Failure + ")";
            var http = $"HTTP {HttpStatus}";
            return (State?.ToUpperInvariant()) switch
            {
                null => http + " without a status JSON (a proxy page, or not Bitbucket at this URL: check the node's Url and its context path)",
                "RUNNING" => HttpStatus == 200 ? "RUNNING" : $"RUNNING ({http})",
                "STARTING" => $"STARTING ({http}): Bitbucket is starting, not ready for requests yet",
                "FIRST_RUN" => $"FIRST_RUN ({http}): Bitbucket is not set up (the setup wizard), so it is not this cluster's configured node",
                "MAINTENANCE" => $"MAINTENANCE ({http}): a backup or migration runs; Bitbucket serves no requests until it ends",
                "ERROR" => $"ERROR ({http}): Bitbucket failed to start; see the node's log in BITBUCKET_HOME/log",
                _ => $"{State} ({http})",
            };
        }
    }

    /// <summary>
    /// THE /status probe of a node, used by every step that asks whether a node is up (start, health gate, restore,
    /// state reads): under the node's context path, with the same TLS trust and proxy as the API client
    /// (<see cref="ZduTransport"/>), no redirects, no credentials sent, a small size cap. Never throws for an answer
    /// or a missing one: <see cref="NodeStatus"/> says what came.
    /// </summary>
    public sealed class NodeStatusProbe : IDisposable
    {
        private const int MaxBytes = 64 * 1024;
        private readonly HttpClient _http;
        private readonly Http.TlsTrust _tls;

        public NodeStatusProbe(Uri nodeUrl, ZduTransport? transport = null, TimeSpan? timeout = null)
        {
            StatusUri = NodeUrls.Status(nodeUrl);
            var policy = ZduTls.Policy(transport, timeout ?? TimeSpan.FromSeconds(5));
            policy.MaxResponseBytes = MaxBytes;
            _http = Http.HttpClientFactory.Create(policy, out _tls);
        }

        /// <summary>Probes exactly <paramref name="statusUri"/> (Start-BbNode -StatusUri).</summary>
        public static NodeStatusProbe ForStatusUri(Uri statusUri, ZduTransport? transport = null, TimeSpan? timeout = null)
        {
            var probe = new NodeStatusProbe(statusUri, transport, timeout);
            probe.StatusUri = statusUri;
            return probe;
        }

        public Uri StatusUri { get; private set; }

        public async Task<NodeStatus> ReadAsync(CancellationToken cancellationToken)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, StatusUri);
                request.Headers.TryAddWithoutValidation("Accept", "application/json");
                request.Headers.TryAddWithoutValidation("User-Agent", ZduClientOptions.DefaultUserAgent);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
                var status = new NodeStatus { HttpStatus = (int)response.StatusCode };
                if (status.HttpStatus == 407)
                {
                    status.ProxyAuthenticationRequired = true;
                    return status;
                }
                // The factory's size cap refused anything longer than MaxBytes (caught below).
                var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                try
                {
                    using var doc = JsonDocument.Parse(body);
                    if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.String)
                        status.State = s.GetString();
                }
                catch (JsonException)
                {
                    // Not Bitbucket's status JSON: the HTTP status says what there is.
                }
                return status;
            }
            catch (Http.HttpResponseTooLargeException tooLarge)
            {
                // Not Bitbucket's small status JSON: the HTTP status says what there is.
                return new NodeStatus { HttpStatus = tooLarge.StatusCode };
            }
            catch (HttpRequestException ex)
            {
                if (ZduTls.IsProxyAuthFailure(ex))
                    return new NodeStatus { ProxyAuthenticationRequired = true, Failure = "the proxy wants credentials (407): pass -ProxyCredential" };
                if (ZduTls.IsTlsFailure(ex))
                    return new NodeStatus
                    {
                        CertificateUntrusted = true,
                        Failure = $"its TLS certificate is not trusted{(_tls.LastFailure is { } f ? " (" + f + ")" : "")}; pass the CA with -TrustedCertificatePath or the profile's Tls = @{{ TrustedCertificatePath = ... }}",
                    };
                return new NodeStatus { Failure = ZduClient.Innermost(ex).Message };
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return new NodeStatus { Failure = $"timed out after {_http.Timeout.TotalSeconds:0.#} s" };
            }
        }

        /// <summary>An error for a probe answer that waiting will not change (ERROR, FIRST_RUN, untrusted certificate, 407); else null.</summary>
        public BbException? Hopeless(NodeStatus status, string node)
        {
            if (status.IsError)
                return new BbException("NodeStatusError", BbErrorCategory.InvalidResult,
                    $"{StatusUri} says {status}. Waiting will not change that: fix the node (or stop it) and resume.", node);
            if (status.IsFirstRun)
                return new BbException("NodeStatusFirstRun", BbErrorCategory.InvalidResult,
                    $"{StatusUri} says {status}. A node of a running cluster never shows the setup wizard: its BITBUCKET_HOME or database settings did not reach the new version.", node);
            if (status.CertificateUntrusted)
                return new BbException("NodeStatusCertificateUntrusted", BbErrorCategory.SecurityError, $"{StatusUri}: {status.Failure}.", node);
            if (status.ProxyAuthenticationRequired)
                return new BbException("NodeStatusProxyAuthenticationRequired", BbErrorCategory.AuthenticationError,
                    ZduErrorTranslator.ProxyAuthMessage($"GET {StatusUri} answered 407."), node);
            return null;
        }

        public void Dispose() => _http.Dispose();
    }
}
