using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// The HTTP handler and its certificate policy: the system's verification by default, plus optional extra trust
    /// anchors (a CA file) whose chains are validated, or no verification at all when the user asked for it.
    /// </summary>
    internal sealed class ZduTls
    {
        private readonly Http.TlsTrust _trust;

        private ZduTls(HttpClientHandler handler, Http.TlsTrust trust)
        {
            Handler = handler;
            _trust = trust;
        }

        public HttpClientHandler Handler { get; }

        /// <summary>Why the last certificate was refused (policy errors and chain status), for the error message.</summary>
        public string? LastFailure => _trust.LastFailure;

        public static ZduTls Create(ZduClientOptions options) => Create(options.Transport);

        /// <summary>
        /// The policy of the module's HTTP to Bitbucket (its API and each node's /status): no redirects, the certificate
        /// trust of <paramref name="transport"/> and its proxy. The handler is made by <see cref="Http.HttpClientFactory"/>.
        /// </summary>
        public static Http.HttpPolicy Policy(ZduTransport? transport, TimeSpan timeout)
        {
            var options = transport ?? new ZduTransport();
            return new Http.HttpPolicy
            {
                Name = "bitbucket",
                SkipCertificateCheck = options.SkipCertificateCheck,
                TrustedCertificates = options.TrustedCertificatePath is { } path ? LoadCertificates(path) : Array.Empty<X509Certificate2>(),
                Proxy = options.Proxy,
                ProxyCredential = options.ProxyCredential,
                FollowRedirects = false,
                Timeout = timeout,
            };
        }

        public static ZduTls Create(ZduTransport transport)
        {
            var handler = Http.HttpClientFactory.CreateHandler(Policy(transport, System.Threading.Timeout.InfiniteTimeSpan), out var trust);
            return new ZduTls(handler, trust);
        }

        /// <summary>Null when the chain of <paramref name="cert"/> is valid and ends at one of the anchors; else why not.</summary>
        internal static string? ChainEndsAtAnchor(X509Certificate2 cert, IReadOnlyList<X509Certificate2> anchors) =>
            Http.TlsTrust.ChainEndsAtAnchor(cert, anchors);

        /// <summary>Reads one DER certificate or every certificate of a PEM file.</summary>
        public static IReadOnlyList<X509Certificate2> LoadCertificates(string path)
        {
            if (!File.Exists(path))
                throw new ArgumentException($"The trusted certificate file '{path}' does not exist.", nameof(path));
            var bytes = File.ReadAllBytes(path);
            var text = System.Text.Encoding.ASCII.GetString(bytes);
            try
            {
                var blocks = Regex.Matches(text, "-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", RegexOptions.Singleline);
                if (blocks.Count == 0) return new[] { new X509Certificate2(bytes) };
                return blocks.Cast<Match>()
                    .Select(m => new X509Certificate2(Convert.FromBase64String(Regex.Replace(m.Groups[1].Value, "\\s+", string.Empty))))
                    .ToArray();
            }
            catch (Exception ex) when (ex is FormatException || ex is System.Security.Cryptography.CryptographicException)
            {
                throw new ArgumentException($"'{path}' is not a certificate file (PEM or DER expected): {ex.Message}", nameof(path), ex);
            }
        }

        /// <summary>True when an HTTPS proxy tunnel (CONNECT) was refused with 407: the proxy wants credentials.</summary>
        public static bool IsProxyAuthFailure(Exception ex)
        {
            for (var e = ex; e is not null; e = e.InnerException)
                if (e.Message.IndexOf("407", StringComparison.Ordinal) >= 0 && e.Message.IndexOf("proxy", StringComparison.OrdinalIgnoreCase) >= 0) return true;
            return false;
        }

        /// <summary>True when TLS (certificate or handshake) failed.</summary>
        public static bool IsTlsFailure(Exception ex)
        {
            for (var e = ex; e is not null; e = e.InnerException)
            {
                if (e is AuthenticationException) return true;
                if (e is WebException we && (we.Status == WebExceptionStatus.TrustFailure || we.Status == WebExceptionStatus.SecureChannelFailure)) return true;
            }
            return false;
        }

        /// <summary>True when the request certainly never reached the server (refused, name not resolved, TLS failed).</summary>
        public static bool WasNotSent(Exception ex)
        {
            if (IsTlsFailure(ex) || IsProxyAuthFailure(ex)) return true;
            for (var e = ex; e is not null; e = e.InnerException)
            {
                if (e is SocketException se)
                {
                    switch (se.SocketErrorCode)
                    {
                        case SocketError.ConnectionRefused:
                        case SocketError.HostNotFound:
                        case SocketError.HostUnreachable:
                        case SocketError.NetworkUnreachable:
                        case SocketError.TryAgain:
                        case SocketError.NoData:
                            return true;
                    }
                }
                if (e is WebException we && (we.Status == WebExceptionStatus.ConnectFailure || we.Status == WebExceptionStatus.NameResolutionFailure))
                    return true;
            }
            return false;
        }
    }
}
