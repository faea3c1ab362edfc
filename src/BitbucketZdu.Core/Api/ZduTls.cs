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
        private readonly IReadOnlyList<X509Certificate2> _anchors;
        private volatile string? _lastFailure;

        private ZduTls(HttpClientHandler handler, IReadOnlyList<X509Certificate2> anchors)
        {
            Handler = handler;
            _anchors = anchors;
        }

        public HttpClientHandler Handler { get; }

        /// <summary>Why the last certificate was refused (policy errors and chain status), for the error message.</summary>
        public string? LastFailure => _lastFailure;

        public static ZduTls Create(ZduClientOptions options) => Create(options.Transport);

        /// <summary>
        /// THE place where the module's HTTP handlers to Bitbucket (its API and each node's /status) are made: no
        /// redirects, no cookies, the certificate policy of <paramref name="transport"/> and its proxy.
        /// </summary>
        public static ZduTls Create(ZduTransport transport)
        {
            var options = transport ?? new ZduTransport();
            var anchors = options.TrustedCertificatePath is { } path ? LoadCertificates(path) : Array.Empty<X509Certificate2>();
            var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false };
            if (options.Proxy is { } proxy)
            {
                handler.Proxy = new WebProxy(proxy) { Credentials = options.ProxyCredential };
                handler.UseProxy = true;
            }
            else if (options.ProxyCredential is { } proxyCredential)
            {
                // The system's proxy (environment or OS settings) with the given credential.
                handler.DefaultProxyCredentials = proxyCredential;
            }
            var tls = new ZduTls(handler, anchors);
            if (options.SkipCertificateCheck)
                handler.ServerCertificateCustomValidationCallback = (_, _, _, _) => true;
            else
                handler.ServerCertificateCustomValidationCallback = (_, cert, _, errors) => tls.Validate(cert, errors);
            return tls;
        }

        private bool Validate(X509Certificate2? cert, SslPolicyErrors errors)
        {
            if (errors == SslPolicyErrors.None) return true;
            if (cert is not null && errors == SslPolicyErrors.RemoteCertificateChainErrors && _anchors.Count > 0)
            {
                var verdict = ChainEndsAtAnchor(cert, _anchors);
                if (verdict is null) return true;
                _lastFailure = $"certificate '{cert.Subject}': {verdict}";
                return false;
            }
            _lastFailure = $"certificate '{cert?.Subject}': {Explain(errors)}" + (_anchors.Count > 0 ? "" : "; it does not chain to a CA this machine trusts");
            return false;
        }

        private static string Explain(SslPolicyErrors errors)
        {
            var parts = new List<string>();
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) parts.Add("its name does not match the host in -Uri");
            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0) parts.Add("its chain is not trusted");
            if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) parts.Add("the server sent no certificate");
            return string.Join(", ", parts);
        }

        /// <summary>Null when the chain of <paramref name="cert"/> is valid and ends at one of the anchors; else why not.</summary>
        internal static string? ChainEndsAtAnchor(X509Certificate2 cert, IReadOnlyList<X509Certificate2> anchors)
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
            foreach (var anchor in anchors) chain.ChainPolicy.ExtraStore.Add(anchor);
            if (!chain.Build(cert))
            {
                var status = chain.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.UntrustedRoot && s.Status != X509ChainStatusFlags.NoError)
                    .Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct();
                return "its chain is not valid: " + string.Join("; ", status);
            }
            var root = chain.ChainElements[chain.ChainElements.Count - 1].Certificate;
            return anchors.Any(a => a.RawData.SequenceEqual(root.RawData))
                ? null
                : $"its chain ends at '{root.Subject}', which is not in the trusted certificate file";
        }

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
