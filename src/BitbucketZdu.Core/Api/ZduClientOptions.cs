using System;

namespace BitbucketZdu.Core.Api
{
    /// <summary>Where and how to reach the rolling-upgrade API.</summary>
    public sealed class ZduClientOptions
    {
        public ZduClientOptions(Uri baseUri, ZduCredential credential)
        {
            BaseUri = NormalizeBase(baseUri);
            Credential = credential ?? throw new ArgumentNullException(nameof(credential));
        }

        /// <summary>Bitbucket's base URL, with its context path if any (https://host/bitbucket/), always ending in '/'.</summary>
        public Uri BaseUri { get; }
        public ZduCredential Credential { get; }

        /// <summary>Skip TLS certificate verification. Off by default; the cmdlets warn every time it is on.</summary>
        public bool SkipCertificateCheck { get; set; }

        /// <summary>How long one HTTP attempt may take.</summary>
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>Overall deadline for a GET including its retries.</summary>
        public TimeSpan RetryDeadline { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>Retries for idempotent GETs on transient faults.</summary>
        public int MaxRetries { get; set; } = 5;

        /// <summary>First backoff delay; later ones grow exponentially with jitter.</summary>
        public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(250);

        /// <summary>Upper bound of one backoff delay (also caps a server's Retry-After).</summary>
        public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>
        /// The most bytes of one answer the client reads (4 MiB by default; a cluster of dozens of nodes answers in a
        /// few KiB). A larger answer is refused with ZduResponseTooLarge instead of filling memory.
        /// </summary>
        public long MaxResponseBytes { get; set; } = 4 * 1024 * 1024;

        /// <summary>
        /// A CA certificate file (PEM or DER, a PEM file may hold several) to trust for this server in addition to
        /// the system's store: the server's chain must end at one of them. For internal CAs the machine does not trust.
        /// </summary>
        public string? TrustedCertificatePath { get; set; }

        /// <summary>An HTTP proxy for every call (null: the system's proxy settings, HTTPS_PROXY/HTTP_PROXY/NO_PROXY).</summary>
        public Uri? Proxy { get; set; }

        /// <summary>The proxy's credential (null: none, or the system's default credentials for the proxy).</summary>
        public System.Net.NetworkCredential? ProxyCredential { get; set; }

        /// <summary>TLS trust and proxy of this client, for other HTTP clients to the same servers (node /status probes).</summary>
        public ZduTransport Transport => new ZduTransport
        {
            TrustedCertificatePath = TrustedCertificatePath,
            SkipCertificateCheck = SkipCertificateCheck,
            Proxy = Proxy,
            ProxyCredential = ProxyCredential,
        };

        /// <summary>
        /// On a 404 for a POST action, try the path printed in the 7.x how-to pages (<c>/rest/zdu/cluster/&lt;action&gt;</c>).
        /// </summary>
        public bool LegacyActionPathFallback { get; set; } = true;

        /// <summary>Where the client says what it retries and reconciles (verbose-level text, never a secret). Optional.</summary>
        public Action<string>? Diagnostic { get; set; }

        /// <summary>Called after every HTTP exchange with the API (method, path, status, elapsed; never headers or bodies). Optional.</summary>
        public Action<ZduRequestRecord>? RequestCompleted { get; set; }

        /// <summary>The module name and version for the User-Agent (never a browser's).</summary>
        public string UserAgent { get; set; } = DefaultUserAgent;

        public static string DefaultUserAgent =>
            "BitbucketZdu/" + (typeof(ZduClientOptions).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

        /// <summary>
        /// Validates a user-supplied base URL: absolute http(s), no query or fragment. Returns it with a trailing '/'
        /// so relative API paths keep the context path.
        /// </summary>
        public static Uri NormalizeBase(Uri baseUri)
        {
            if (baseUri is null) throw new ArgumentNullException(nameof(baseUri));
            if (!baseUri.IsAbsoluteUri || (baseUri.Scheme != Uri.UriSchemeHttp && baseUri.Scheme != Uri.UriSchemeHttps))
                throw new ArgumentException($"'{baseUri}' is not an http or https URL. Give Bitbucket's base URL, e.g. https://bitbucket.example.com or https://host/bitbucket.", nameof(baseUri));
            if (!string.IsNullOrEmpty(baseUri.Query) || !string.IsNullOrEmpty(baseUri.Fragment))
                throw new ArgumentException($"'{baseUri}' has a query or fragment. Give only Bitbucket's base URL, e.g. https://host/bitbucket.", nameof(baseUri));
            if (!string.IsNullOrEmpty(baseUri.UserInfo))
                throw new ArgumentException("Do not put credentials in the URL; pass -Credential instead.", nameof(baseUri));
            var text = baseUri.GetLeftPart(UriPartial.Path);
            var restAt = text.IndexOf("/rest/zdu", StringComparison.OrdinalIgnoreCase);
            if (restAt >= 0) text = text.Substring(0, restAt);
            return new Uri(text.EndsWith("/", StringComparison.Ordinal) ? text : text + "/");
        }
    }
}
