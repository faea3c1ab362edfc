using System;
using System.Diagnostics;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>HTTP plumbing shared by the HTTP-controlled load balancers: TLS policy, Basic auth, errors.</summary>
    internal static class LoadBalancerHttp
    {
        /// <param name="basicAuth">False where the user name is no HTTP Basic user (an AWS access key id signs requests instead).</param>
        public static HttpClient CreateClient(LoadBalancerDescription d, bool basicAuth = true)
        {
            var client = Http.HttpClientFactory.Create(Policy(d));
            if (basicAuth && d.UserName is not null)
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes(d.UserName + ":" + Reveal(d.Password))));
            return client;
        }

        /// <summary>
        /// The policy of a load balancer's API: no redirects (the Basic credential stays with the host it was given
        /// for), the system's trust unless -SkipCertificateCheck, the description's request timeout. Calls are logged by
        /// <see cref="SendAsync"/> through <see cref="LoadBalancerDiagnostics"/>.
        /// </summary>
        public static Http.HttpPolicy Policy(LoadBalancerDescription d) => new Http.HttpPolicy
        {
            Name = d.Kind.ToString(),
            SkipCertificateCheck = d.SkipCertificateCheck,
            FollowRedirects = false,
            Timeout = d.RequestTimeout,
        };

        /// <summary>Sends a request, turning transport failures and timeouts into <c>LoadBalancerUnreachable</c>.</summary>
        public static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpRequestMessage request, LoadBalancerDescription d, CancellationToken cancellationToken)
        {
            var where = request.RequestUri!.GetLeftPart(UriPartial.Path);
            var watch = Stopwatch.StartNew();
            try
            {
                var response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
                LoadBalancerDiagnostics.Http(d, request.Method.Method, request.RequestUri, (int)response.StatusCode, watch, null);
                return response;
            }
            catch (HttpRequestException ex)
            {
                LoadBalancerDiagnostics.Http(d, request.Method.Method, request.RequestUri, null, watch, ex);
                throw LoadBalancerErrors.Unreachable(d, where, ex.InnerException ?? ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                LoadBalancerDiagnostics.Http(d, request.Method.Method, request.RequestUri, null, watch, new TimeoutException());
                throw LoadBalancerErrors.Unreachable(d, where, new TimeoutException($"No answer within {d.RequestTimeout.TotalSeconds:0.#} s.", ex));
            }
        }

        /// <summary>The secret as a string, only at the moment of use.</summary>
        public static string Reveal(SecureString? secret)
        {
            if (secret is null || secret.Length == 0) return "";
            var ptr = IntPtr.Zero;
            try
            {
                ptr = Marshal.SecureStringToGlobalAllocUnicode(secret);
                return Marshal.PtrToStringUni(ptr) ?? "";
            }
            finally
            {
                if (ptr != IntPtr.Zero) Marshal.ZeroFreeGlobalAllocUnicode(ptr);
            }
        }
    }
}
