using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers.AzureAppGateway
{
    /// <summary>
    /// Bearer tokens for Azure Resource Manager without the Azure SDK (its assemblies conflict with the Az modules a
    /// runbook may have loaded): managed identity (Azure Automation's IDENTITY_ENDPOINT, else the VM metadata endpoint),
    /// a service principal's client secret, or a token the caller has. Tokens are cached until shortly before they
    /// expire and never appear in messages.
    /// </summary>
    public sealed class AzureTokenSource
    {
        private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);
        private readonly LoadBalancerDescription _d;
        private readonly HttpClient _http;
        private string? _token;
        private DateTimeOffset _expires;

        public AzureTokenSource(LoadBalancerDescription description, HttpClient http)
        {
            _d = description;
            _http = http;
        }

        /// <summary>False for a caller-supplied token: when it expires there is no way to get another.</summary>
        public bool CanRefresh => _d.AzureAuthentication != AzureAuthentication.Token;

        public async Task<string> GetTokenAsync(bool forceRefresh, CancellationToken cancellationToken)
        {
            if (_d.AzureAuthentication == AzureAuthentication.Token)
            {
                var given = LoadBalancerHttp.Reveal(_d.Token);
                if (given.Length == 0)
                    throw new BbException("AzureTokenMissing", BbErrorCategory.AuthenticationError, "No Azure Resource Manager token was given (-Token).");
                return given;
            }
            if (!forceRefresh && _token is not null && DateTimeOffset.UtcNow < _expires - Skew) return _token;

            using var request = _d.AzureAuthentication == AzureAuthentication.ServicePrincipal ? ServicePrincipalRequest() : ManagedIdentityRequest();
            var where = request.RequestUri!.GetLeftPart(UriPartial.Path);
            HttpResponseMessage response;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                LoadBalancerDiagnostics.Http(_d, request.Method.Method, request.RequestUri, (int)response.StatusCode, watch, null);
            }
            catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                LoadBalancerDiagnostics.Http(_d, request.Method.Method, request.RequestUri, null, watch, ex);
                throw new BbException("AzureAuthenticationFailed", BbErrorCategory.AuthenticationError,
                    $"Cannot get an Azure token from {where} ({_d.AzureAuthentication}): {(ex.InnerException ?? ex).Message} " +
                    (_d.AzureAuthentication == AzureAuthentication.ManagedIdentity ? "Is a managed identity enabled for this Automation account or VM?" : ""), where, ex);
            }
            using (response)
            {
                var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw new BbException("AzureAuthenticationFailed", BbErrorCategory.AuthenticationError,
                        $"{where} refused a token ({_d.AzureAuthentication}): HTTP {(int)response.StatusCode} {ErrorText(body)}", where);
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                _token = root.TryGetProperty("access_token", out var t) ? t.GetString() : null;
                if (string.IsNullOrEmpty(_token))
                    throw new BbException("AzureAuthenticationFailed", BbErrorCategory.AuthenticationError, $"{where} answered without an access_token.", where);
                _expires = DateTimeOffset.UtcNow.AddMinutes(10);
                if (root.TryGetProperty("expires_on", out var on) && long.TryParse(on.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var unix))
                    _expires = DateTimeOffset.FromUnixTimeSeconds(unix);
                else if (root.TryGetProperty("expires_in", out var inSec) && long.TryParse(inSec.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var secs))
                    _expires = DateTimeOffset.UtcNow.AddSeconds(secs);
                return _token!;
            }
        }

        private HttpRequestMessage ManagedIdentityRequest()
        {
            var endpoint = _d.IdentityEndpoint ?? (Environment.GetEnvironmentVariable("IDENTITY_ENDPOINT") is { Length: > 0 } e ? new Uri(e) : null);
            var clientId = string.IsNullOrEmpty(_d.ClientId) ? "" : "&client_id=" + Uri.EscapeDataString(_d.ClientId);
            var resource = Uri.EscapeDataString(_d.AzureResource);
            if (endpoint is not null)
            {
                // Azure Automation (and App Service style) identity endpoint.
                var sep = endpoint.Query.Length > 0 ? "&" : "?";
                var request = new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint + sep + "resource=" + resource + clientId));
                var header = _d.IdentityHeader is not null ? LoadBalancerHttp.Reveal(_d.IdentityHeader) : Environment.GetEnvironmentVariable("IDENTITY_HEADER") ?? "";
                request.Headers.TryAddWithoutValidation("X-IDENTITY-HEADER", header);
                request.Headers.TryAddWithoutValidation("Metadata", "True");
                return request;
            }
            var imds = new HttpRequestMessage(HttpMethod.Get,
                new Uri(_d.ImdsEndpoint, "metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource + clientId));
            imds.Headers.TryAddWithoutValidation("Metadata", "true");
            return imds;
        }

        private HttpRequestMessage ServicePrincipalRequest()
        {
            if (string.IsNullOrEmpty(_d.TenantId) || string.IsNullOrEmpty(_d.ClientId) || _d.ClientSecret is null)
                throw new BbException("AzureServicePrincipalIncomplete", BbErrorCategory.InvalidArgument,
                    "A service principal needs -TenantId, -ClientId and -ClientSecret.");
            var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = _d.ClientId!,
                ["client_secret"] = LoadBalancerHttp.Reveal(_d.ClientSecret),
                ["scope"] = _d.AzureResource.TrimEnd('/') + "/.default",
            });
            return new HttpRequestMessage(HttpMethod.Post, new Uri(_d.AuthorityEndpoint, Uri.EscapeDataString(_d.TenantId!) + "/oauth2/v2.0/token")) { Content = form };
        }

        private static string ErrorText(string body)
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                var r = doc.RootElement;
                foreach (var name in new[] { "error_description", "Message", "message", "error" })
                    if (r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String) return v.GetString() ?? "";
            }
            catch (JsonException) { }
            return body.Length > 200 ? body.Substring(0, 200) : body;
        }
    }
}
