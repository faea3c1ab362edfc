using System;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Security;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// How <see cref="AzureBlobJournalStore"/> authenticates to Azure Storage: Shared Key (account name and key), a SAS
    /// token, or an OAuth bearer token (a managed identity's token for https://storage.azure.com/). Secrets stay in
    /// SecureString and are revealed only while one request is signed; <see cref="ToString"/> never shows them.
    /// </summary>
    public sealed class AzureStorageCredential
    {
        private readonly SecureString? _secret;
        private readonly Func<CancellationToken, Task<SecureString>>? _tokenProvider;

        private AzureStorageCredential(AzureStorageAuthKind kind, string? accountName, SecureString? secret,
            Func<CancellationToken, Task<SecureString>>? tokenProvider)
        {
            Kind = kind;
            AccountName = accountName;
            _secret = secret;
            _tokenProvider = tokenProvider;
        }

        public AzureStorageAuthKind Kind { get; }

        /// <summary>The storage account for Shared Key; null otherwise.</summary>
        public string? AccountName { get; }

        /// <summary>Shared Key: the account name and one of its access keys (base64, as the portal shows it).</summary>
        public static AzureStorageCredential SharedKey(string accountName, SecureString accountKey)
        {
            if (string.IsNullOrWhiteSpace(accountName)) throw new ArgumentException("The storage account name is required for Shared Key authentication.", nameof(accountName));
            return new AzureStorageCredential(AzureStorageAuthKind.SharedKey, accountName, accountKey ?? throw new ArgumentNullException(nameof(accountKey)), null);
        }

        /// <summary>A SAS token (the query string, with or without the leading '?') granting read, add, create, write on the container.</summary>
        public static AzureStorageCredential Sas(SecureString sasToken) =>
            new AzureStorageCredential(AzureStorageAuthKind.Sas, null, sasToken ?? throw new ArgumentNullException(nameof(sasToken)), null);

        /// <summary>A bearer token for https://storage.azure.com/ (e.g. <c>Get-AzAccessToken -ResourceUrl https://storage.azure.com/ -AsSecureString</c>).</summary>
        public static AzureStorageCredential Bearer(SecureString token) =>
            new AzureStorageCredential(AzureStorageAuthKind.Bearer, null, token ?? throw new ArgumentNullException(nameof(token)), null);

        /// <summary>A bearer token fetched for every request, so a run longer than a token's lifetime keeps working (managed identity).</summary>
        public static AzureStorageCredential Bearer(Func<CancellationToken, Task<SecureString>> tokenProvider) =>
            new AzureStorageCredential(AzureStorageAuthKind.Bearer, null, null, tokenProvider ?? throw new ArgumentNullException(nameof(tokenProvider)));

        public override string ToString() => Kind switch
        {
            AzureStorageAuthKind.SharedKey => $"Shared Key of account {AccountName} (key hidden)",
            AzureStorageAuthKind.Sas => "SAS token (hidden)",
            _ => "bearer token (hidden)",
        };

        /// <summary>Adds the SAS to the request URI, or signs it (Shared Key), or sets the bearer header. The last step before sending.</summary>
        internal async Task AuthorizeAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            switch (Kind)
            {
                case AzureStorageAuthKind.Sas:
                    var sas = ZduCredential.Reveal(_secret!).TrimStart('?');
                    var uri = request.RequestUri!;
                    request.RequestUri = new Uri(uri.AbsoluteUri + (string.IsNullOrEmpty(uri.Query) ? "?" : "&") + sas);
                    break;
                case AzureStorageAuthKind.Bearer:
                    var secure = _tokenProvider is null ? _secret! : await _tokenProvider(cancellationToken).ConfigureAwait(false);
                    request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + ZduCredential.Reveal(secure));
                    break;
                default:
                    request.Headers.TryAddWithoutValidation("Authorization", "SharedKey " + AccountName + ":" + SignSharedKey(request));
                    break;
            }
        }

        // https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key (version 2015-02-21 and later).
        private string SignSharedKey(HttpRequestMessage request)
        {
            string Header(string name)
            {
                if (request.Headers.TryGetValues(name, out var v)) return string.Join(",", v);
                if (request.Content is not null && request.Content.Headers.TryGetValues(name, out var c)) return string.Join(",", c);
                return "";
            }

            var length = request.Content?.Headers.ContentLength;
            var sb = new StringBuilder();
            sb.Append(request.Method.Method.ToUpperInvariant()).Append('\n');
            sb.Append(Header("Content-Encoding")).Append('\n');
            sb.Append(Header("Content-Language")).Append('\n');
            sb.Append(length is null || length == 0 ? "" : length.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
            sb.Append(Header("Content-MD5")).Append('\n');
            sb.Append(Header("Content-Type")).Append('\n');
            sb.Append('\n'); // Date: x-ms-date is used instead
            sb.Append(Header("If-Modified-Since")).Append('\n');
            sb.Append(Header("If-Match")).Append('\n');
            sb.Append(Header("If-None-Match")).Append('\n');
            sb.Append(Header("If-Unmodified-Since")).Append('\n');
            sb.Append(Header("Range")).Append('\n');
            foreach (var h in request.Headers
                         .Where(h => h.Key.StartsWith("x-ms-", StringComparison.OrdinalIgnoreCase))
                         .Select(h => new { Name = h.Key.ToLowerInvariant(), Value = string.Join(",", h.Value).Trim() })
                         .OrderBy(h => h.Name, StringComparer.Ordinal))
                sb.Append(h.Name).Append(':').Append(h.Value).Append('\n');

            var uri = request.RequestUri!;
            sb.Append('/').Append(AccountName).Append(uri.AbsolutePath);
            var query = uri.Query.TrimStart('?');
            if (query.Length > 0)
            {
                foreach (var p in query.Split('&')
                             .Select(kv => kv.Split(new[] { '=' }, 2))
                             .GroupBy(kv => Uri.UnescapeDataString(kv[0]).ToLowerInvariant())
                             .OrderBy(g => g.Key, StringComparer.Ordinal))
                    sb.Append('\n').Append(p.Key).Append(':')
                        .Append(string.Join(",", p.Select(kv => kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "").OrderBy(v => v, StringComparer.Ordinal)));
            }

            byte[] key;
            try
            {
                key = Convert.FromBase64String(ZduCredential.Reveal(_secret!));
            }
            catch (FormatException)
            {
                throw new BbException("JournalStorageInvalidKey", BbErrorCategory.InvalidArgument,
                    $"The access key of storage account '{AccountName}' is not base64. Copy key1 or key2 from the account's 'Access keys' page.", AccountName);
            }
            using var hmac = new HMACSHA256(key);
            return Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(sb.ToString())));
        }
    }

    public enum AzureStorageAuthKind
    {
        SharedKey,
        Sas,
        Bearer,
    }
}
