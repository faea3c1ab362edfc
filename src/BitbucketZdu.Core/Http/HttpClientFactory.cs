using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Http
{
    /// <summary>
    /// What one use of HTTP wants, stated explicitly: certificate trust, proxy, redirects, a response size cap, the
    /// timeout and where request lines are logged. Made into a client by <see cref="HttpClientFactory"/>.
    /// </summary>
    public sealed class HttpPolicy
    {
        /// <summary>For log lines: who sends (e.g. "zdu", "nginx-plus lb", "journal").</summary>
        public string Name { get; set; } = "http";

        /// <summary>No certificate verification at all: only when the user asked for it (-SkipCertificateCheck).</summary>
        public bool SkipCertificateCheck { get; set; }

        /// <summary>Extra trust anchors (a CA file). Chains to them are accepted besides the system's trust.</summary>
        public IReadOnlyList<X509Certificate2> TrustedCertificates { get; set; } = Array.Empty<X509Certificate2>();

        /// <summary>
        /// With <see cref="TrustedCertificates"/>: the server's chain must end at one of them; a certificate of any other
        /// CA, even one this machine trusts, is refused.
        /// </summary>
        public bool OnlyTrustedCertificates { get; set; }

        /// <summary>An explicit proxy; null for the system's (environment or OS settings).</summary>
        public Uri? Proxy { get; set; }

        /// <summary>Credential for <see cref="Proxy"/>, or for the system's proxy when <see cref="Proxy"/> is null.</summary>
        public ICredentials? ProxyCredential { get; set; }

        /// <summary>Off by default: a redirect is answered as it came (credentials never follow to another host).</summary>
        public bool FollowRedirects { get; set; }

        /// <summary>Responses larger than this are refused with <see cref="HttpResponseTooLargeException"/>; null: no cap.</summary>
        public long? MaxResponseBytes { get; set; }

        /// <summary>Per-request timeout of the client; <see cref="Timeout.InfiniteTimeSpan"/> when the caller times itself.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>Gets one line per request (method, URL without query, status, time); null: nothing logged here.</summary>
        public Action<string>? Diagnostics { get; set; }
    }

    /// <summary>
    /// THE place where the module's HTTP clients are made (Bitbucket's API and node /status probes, the load balancers,
    /// the blob journal and the managed-identity token endpoint). Cookies are never kept; TLS is verified unless the
    /// policy says <see cref="HttpPolicy.SkipCertificateCheck"/>.
    /// </summary>
    public static class HttpClientFactory
    {
        /// <summary>A client for <paramref name="policy"/>; it owns its handler.</summary>
        public static HttpClient Create(HttpPolicy policy) => Create(policy, out _);

        /// <summary>A client for <paramref name="policy"/>; <paramref name="trust"/> tells why a certificate was refused.</summary>
        public static HttpClient Create(HttpPolicy policy, out TlsTrust trust)
        {
            var handler = CreateHandler(policy, out trust);
            // Loud: whoever logs this client's calls also learns that its certificates are not checked.
            if (policy.SkipCertificateCheck) policy.Diagnostics?.Invoke($"{policy.Name}: TLS certificate verification is OFF (-SkipCertificateCheck)");
            return Wrap(policy, handler, disposeHandler: true);
        }

        /// <summary>
        /// A client over a given handler (tests and custom transports): the policy's size cap, logging and timeout apply,
        /// its TLS and proxy settings are the handler's business.
        /// </summary>
        public static HttpClient Create(HttpPolicy policy, HttpMessageHandler handler, bool disposeHandler = true) =>
            Wrap(policy, handler, disposeHandler);

        /// <summary>The socket-level handler: no cookies, redirects as the policy says, its certificate trust and proxy.</summary>
        public static HttpClientHandler CreateHandler(HttpPolicy policy, out TlsTrust trust)
        {
            if (policy is null) throw new ArgumentNullException(nameof(policy));
            var handler = new HttpClientHandler { AllowAutoRedirect = policy.FollowRedirects, UseCookies = false };
            if (policy.Proxy is { } proxy)
            {
                handler.Proxy = new WebProxy(proxy) { Credentials = policy.ProxyCredential };
                handler.UseProxy = true;
            }
            else if (policy.ProxyCredential is { } proxyCredential)
            {
                handler.DefaultProxyCredentials = proxyCredential;
            }
            trust = new TlsTrust(policy.TrustedCertificates ?? Array.Empty<X509Certificate2>(), policy.OnlyTrustedCertificates);
            var t = trust;
            if (policy.SkipCertificateCheck)
                handler.ServerCertificateCustomValidationCallback = (_, _, _, _) => true;
            else
                // The system's verification plus the anchors; the callback also records why a certificate was refused.
                handler.ServerCertificateCustomValidationCallback = (_, cert, _, errors) => t.Validate(cert, errors);
            return handler;
        }

        private static HttpClient Wrap(HttpPolicy policy, HttpMessageHandler handler, bool disposeHandler)
        {
            HttpMessageHandler outer = handler;
            if (policy.MaxResponseBytes is long cap) outer = new SizeCapHandler(cap) { InnerHandler = outer };
            if (policy.Diagnostics is { } sink) outer = new LoggingHandler(policy.Name, sink) { InnerHandler = outer };
            // Disposing the wrappers disposes the inner handler: both only when the caller gave the handler away.
            return new HttpClient(outer, disposeHandler) { Timeout = policy.Timeout };
        }

        /// <summary>A URL fit for a log line: scheme, host, port and path; never the query (SAS tokens, nonces) or user info.</summary>
        public static string Redact(Uri? uri) =>
            uri is null ? ""
            : uri.IsAbsoluteUri ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : uri.OriginalString.Split('?', '#')[0];

        /// <summary>Refuses responses whose body is larger than the cap, before the caller reads them.</summary>
        private sealed class SizeCapHandler : DelegatingHandler
        {
            private readonly long _cap;

            public SizeCapHandler(long cap) => _cap = cap;

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (response.Content is null) return response;
                try
                {
                    if (response.Content.Headers.ContentLength is long n && n > _cap) throw new HttpResponseTooLargeException(status, _cap);
                    // Reads at most the cap; a longer body (chunked, or lying about its length) fails here.
                    await response.Content.LoadIntoBufferAsync(_cap).ConfigureAwait(false);
                    return response;
                }
                catch (HttpRequestException ex) when (!(ex is HttpResponseTooLargeException))
                {
                    response.Dispose();
                    throw new HttpResponseTooLargeException(status, _cap, ex);
                }
                catch
                {
                    response.Dispose();
                    throw;
                }
            }
        }

        /// <summary>One line per request to the sink: method, redacted URL, status or failure, time. Never headers.</summary>
        private sealed class LoggingHandler : DelegatingHandler
        {
            private readonly string _name;
            private readonly Action<string> _sink;

            public LoggingHandler(string name, Action<string> sink)
            {
                _name = name;
                _sink = sink;
            }

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                var watch = Stopwatch.StartNew();
                var what = $"{_name}: {request.Method.Method} {Redact(request.RequestUri)}";
                try
                {
                    var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                    _sink($"{what} -> {(int)response.StatusCode} in {watch.ElapsedMilliseconds} ms");
                    return response;
                }
                catch (Exception ex)
                {
                    // The exception's type only: messages of some stacks repeat the full URL.
                    _sink($"{what} -> failed ({ex.GetType().Name}) after {watch.ElapsedMilliseconds} ms");
                    throw;
                }
            }
        }
    }

    /// <summary>The response body was larger than the policy's <see cref="HttpPolicy.MaxResponseBytes"/>.</summary>
    public sealed class HttpResponseTooLargeException : HttpRequestException
    {
        public HttpResponseTooLargeException(int statusCode, long cap, Exception? inner = null)
            : base($"The response (HTTP {statusCode}) is larger than {cap} bytes.", inner)
        {
            StatusCode = statusCode;
        }

        public int StatusCode { get; }
    }

    /// <summary>A policy's certificate trust, and why the last certificate was refused (for error messages).</summary>
    public sealed class TlsTrust
    {
        private readonly bool _only;
        private volatile string? _lastFailure;

        internal TlsTrust(IReadOnlyList<X509Certificate2> anchors, bool onlyAnchors)
        {
            Anchors = anchors;
            _only = onlyAnchors;
        }

        public IReadOnlyList<X509Certificate2> Anchors { get; }

        public string? LastFailure => _lastFailure;

        internal bool Validate(X509Certificate2? cert, SslPolicyErrors errors)
        {
            if (_only && Anchors.Count > 0)
            {
                // Host name must match, and the chain must end at one of the anchors whatever the system trusts.
                if (cert is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
                {
                    _lastFailure = $"certificate '{cert?.Subject}': {Explain(errors)}";
                    return false;
                }
                var only = ChainEndsAtAnchor(cert, Anchors);
                if (only is null) return true;
                _lastFailure = $"certificate '{cert.Subject}': {only}";
                return false;
            }
            if (errors == SslPolicyErrors.None) return true;
            if (cert is not null && errors == SslPolicyErrors.RemoteCertificateChainErrors && Anchors.Count > 0)
            {
                var verdict = ChainEndsAtAnchor(cert, Anchors);
                if (verdict is null) return true;
                _lastFailure = $"certificate '{cert.Subject}': {verdict}";
                return false;
            }
            _lastFailure = $"certificate '{cert?.Subject}': {Explain(errors)}" + (Anchors.Count > 0 ? "" : "; it does not chain to a CA this machine trusts");
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
        public static string? ChainEndsAtAnchor(X509Certificate2 cert, IReadOnlyList<X509Certificate2> anchors)
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
    }
}
