using System;
using System.Net;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// How the module's HTTP clients reach Bitbucket, shared by the API client and the nodes' /status probes: extra
    /// trusted CA certificates (or no verification at all), and an HTTP proxy with its credential.
    /// Handlers are made from it in one place, <c>ZduTls.Create</c>.
    /// </summary>
    public sealed class ZduTransport
    {
        /// <summary>A CA certificate file (PEM or DER) trusted in addition to the system's store.</summary>
        public string? TrustedCertificatePath { get; set; }

        /// <summary>No certificate verification (test servers only; the cmdlets warn).</summary>
        public bool SkipCertificateCheck { get; set; }

        /// <summary>An HTTP proxy (null: the system's settings, HTTPS_PROXY/HTTP_PROXY/NO_PROXY).</summary>
        public Uri? Proxy { get; set; }

        /// <summary>The proxy's credential.</summary>
        public NetworkCredential? ProxyCredential { get; set; }
    }
}
