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
                if (IsArcChallenge(request, response, out var keyFile))
                {
                    // Azure Arc-enabled server (a Hybrid Runbook Worker on premises): the agent answers 401 naming a
                    // file only local administrators (and its own group) can read; its content is the Basic secret.
                    response.Dispose();
                    using var again = ArcRequest(request.RequestUri!);
                    again.Headers.TryAddWithoutValidation("Authorization", "Basic " + ReadArcSecret(keyFile!, where));
                    watch.Restart();
                    response = await _http.SendAsync(again, cancellationToken).ConfigureAwait(false);
                    LoadBalancerDiagnostics.Http(_d, again.Method.Method, again.RequestUri, (int)response.StatusCode, watch, null);
                }
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
            var identityHeader = _d.IdentityHeader is not null ? LoadBalancerHttp.Reveal(_d.IdentityHeader) : Environment.GetEnvironmentVariable("IDENTITY_HEADER") ?? "";
            if (endpoint is not null && (ArcAgent ?? IsArcAgent(identityHeader, Environment.GetEnvironmentVariable("IMDS_ENDPOINT"))))
            {
                // The Azure Connected Machine agent (Arc-enabled servers, e.g. a Hybrid Runbook Worker): it wants api-version and answers the first request with a secret-file challenge. Arc has only the
                // system-assigned identity, so no client_id.
                return ArcRequest(new Uri(endpoint + (endpoint.Query.Length > 0 ? "&" : "?") + "api-version=" + ArcApiVersion + "&resource=" + resource));
            }
            if (endpoint is not null)
            {
                // Azure Automation (and App Service style) identity endpoint.
                var sep = endpoint.Query.Length > 0 ? "&" : "?";
                var request = new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint + sep + "resource=" + resource + clientId));
                request.Headers.TryAddWithoutValidation("X-IDENTITY-HEADER", identityHeader);
                request.Headers.TryAddWithoutValidation("Metadata", "True");
                return request;
            }
            var imds = new HttpRequestMessage(HttpMethod.Get,
                new Uri(_d.ImdsEndpoint, "metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource + clientId));
            imds.Headers.TryAddWithoutValidation("Metadata", "true");
            return imds;
        }

        /// <summary>
        /// Whether the identity endpoint is the Azure Connected Machine agent's: it sets IDENTITY_ENDPOINT and
        /// IMDS_ENDPOINT and no IDENTITY_HEADER (the Automation sandbox sets IDENTITY_HEADER), as Azure.Identity tells them apart.
        /// </summary>
        internal static bool IsArcAgent(string? identityHeader, string? imdsEndpoint) =>
            string.IsNullOrEmpty(identityHeader) && !string.IsNullOrEmpty(imdsEndpoint);

        /// <summary>For tests: whether the endpoint is an Arc agent's; null decides from the environment (<see cref="IsArcAgent"/>).</summary>
        internal bool? ArcAgent { get; set; }

        /// <summary>The api-version of the Arc agent's identity endpoint (Microsoft: "Authenticate against Azure resources with Azure Arc-enabled servers").</summary>
        internal const string ArcApiVersion = "2020-06-01";

        /// <summary>
        /// Where the Arc agent writes its challenge files; a challenge naming any other place is refused, so a local
        /// process posing as the agent cannot make the module read and send an arbitrary file.
        /// </summary>
        internal string ArcKeyDirectory { get; set; } = System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Windows)
            ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "AzureConnectedMachineAgent", "Tokens")
            : "/var/opt/azcmagent/tokens";

        private static HttpRequestMessage ArcRequest(Uri uri)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.TryAddWithoutValidation("Metadata", "true");
            return request;
        }

        private bool IsArcChallenge(HttpRequestMessage request, HttpResponseMessage response, out string? keyFile)
        {
            keyFile = null;
            if (response.StatusCode != System.Net.HttpStatusCode.Unauthorized || request.Headers.Contains("Authorization")) return false;
            if (request.RequestUri is null || request.RequestUri.Query.IndexOf("api-version=" + ArcApiVersion, StringComparison.Ordinal) < 0) return false;
            foreach (var challenge in response.Headers.WwwAuthenticate)
            {
                if (!string.Equals(challenge.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) || challenge.Parameter is null) continue;
                var p = challenge.Parameter.Trim();
                if (p.StartsWith("realm=", StringComparison.OrdinalIgnoreCase)) { keyFile = p.Substring(6).Trim('"'); return true; }
            }
            return false;
        }

        private string ReadArcSecret(string keyFile, string where)
        {
            string full;
            try { full = System.IO.Path.GetFullPath(keyFile); }
            catch (Exception ex) when (ex is ArgumentException || ex is NotSupportedException || ex is System.IO.PathTooLongException) { full = ""; }
            var dir = System.IO.Path.GetFullPath(ArcKeyDirectory).TrimEnd(System.IO.Path.DirectorySeparatorChar);
            var comparison = System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Windows) ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            if (full.Length == 0 || !string.Equals(System.IO.Path.GetDirectoryName(full), dir, comparison) || !full.EndsWith(".key", comparison))
                throw new BbException("AzureArcChallengeInvalid", BbErrorCategory.SecurityError,
                    $"{where} answered with a challenge file outside {dir} ({keyFile}); the Azure Connected Machine agent writes them only there. Refusing to read it.", where);
            try
            {
                var info = new System.IO.FileInfo(full);
                if (info.Length > 4096)
                    throw new BbException("AzureArcChallengeInvalid", BbErrorCategory.SecurityError, $"The challenge file {full} is larger than 4096 bytes; it is not the agent's.", where);
                return System.IO.File.ReadAllText(full).Trim();
            }
            catch (Exception ex) when (ex is UnauthorizedAccessException || ex is System.IO.IOException)
            {
                throw new BbException("AzureArcChallengeDenied", BbErrorCategory.PermissionDenied,
                    $"Cannot read the Azure Arc challenge file {full}: {ex.Message} On an Arc-enabled Hybrid Runbook Worker the job's account must be a local administrator " +
                    "or in the 'Hybrid agent extension applications' group (Windows) / 'himds' group (Linux).", where, ex);
            }
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
