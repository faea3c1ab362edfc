using System;
using System.Net.Http;
using System.Runtime.InteropServices;
using System.Security;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.LoadBalancers.AzureAppGateway;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// Chooses a run's journal store from the profile and the caller's options, and validates the choice before anything
    /// changes: -JournalUri (or the profile's Journal) selects the Azure blob store, -JournalPath (or the profile's
    /// JournalPath) a folder, nothing the per-user folder. ErrorIds: JournalStorageInvalidUri, JournalStorageInsecure,
    /// JournalCredentialMissing, JournalParameterConflict, JournalStorageInvalidKey. Messages never show a secret.
    /// </summary>
    public static class JournalStoreFactory
    {
        /// <summary>The token audience of Azure Storage.</summary>
        public const string StorageResource = "https://storage.azure.com/";

        // One client for managed-identity tokens per process: the token endpoint is local (IDENTITY_ENDPOINT or IMDS).
        private static readonly Lazy<HttpClient> IdentityHttp = new Lazy<HttpClient>(() => Http.HttpClientFactory.Create(IdentityPolicy));

        // The token endpoint: system TLS trust, no redirects, a token answer is small.
        private static Http.HttpPolicy IdentityPolicy => new Http.HttpPolicy
        {
            Name = "managed identity",
            Timeout = TimeSpan.FromSeconds(30),
            MaxResponseBytes = 1024 * 1024,
            Diagnostics = Api.ZduDiagnostics.Ambient,
        };

        /// <summary>The blob settings the run uses (parameters over the profile), or null for a folder journal. Throws on conflicts.</summary>
        public static BlobJournalSettings? Resolve(ClusterProfile profile, UpgradeConnectionOptions options)
        {
            BlobJournalSettings? settings;
            if (options.JournalUri is string text)
            {
                if (options.JournalPath is not null)
                    throw new BbException("JournalParameterConflict", BbErrorCategory.InvalidArgument,
                        "Give -JournalPath (a folder) or -JournalUri (an Azure Storage container), not both.", "JournalUri");
                if (!TryParseContainerUri(text, out var uri, out var why))
                    throw new BbException("JournalStorageInvalidUri", BbErrorCategory.InvalidArgument, "-JournalUri: " + why, "JournalUri");
                var p = profile.Journal;
                settings = new BlobJournalSettings(uri!)
                {
                    Authentication = p?.Authentication,
                    ClientId = p?.ClientId,
                    BlobPrefix = p?.BlobPrefix ?? "",
                    LeaseSeconds = p?.LeaseSeconds ?? 60,
                    AllowHttp = p?.AllowHttp ?? false,
                    Place = "-JournalUri",
                };
            }
            else
            {
                settings = options.JournalPath is null ? profile.Journal : null;
            }
            if (options.JournalAllowHttp && settings is not null) settings.AllowHttp = true;

            if (settings is null)
            {
                if (options.JournalSecret is not null || options.JournalAuthentication is not null)
                    throw new BbException("JournalParameterConflict", BbErrorCategory.InvalidArgument,
                        (options.JournalSecret is not null ? "-JournalCredential" : "-JournalAuthentication")
                        + " is for a journal in Azure Storage, but neither -JournalUri nor the profile's Journal = @{ Uri = ... } names a container"
                        + (options.JournalPath is not null ? " (-JournalPath selects a folder)." : "."), "JournalCredential");
                return null;
            }
            if (options.JournalAuthentication is JournalAuthentication a) settings.Authentication = a;
            return settings;
        }

        /// <summary>Builds the store the run uses; the caller disposes it when it is <see cref="IDisposable"/>.</summary>
        public static IJournalStore Create(ClusterProfile profile, UpgradeConnectionOptions options)
        {
            var settings = Resolve(profile, options);
            if (settings is null)
                return new FileJournalStore(options.JournalPath ?? profile.JournalPath ?? FileJournalStore.DefaultDirectory);
            var uri = settings.ContainerUri;
            var where = uri.GetLeftPart(UriPartial.Path);
            if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback && !settings.AllowHttp)
                throw new BbException("JournalStorageInsecure", BbErrorCategory.SecurityError,
                    $"The journal container {where} ({settings.Place}) is http: the journal and its credential would cross the network unencrypted. "
                    + "Use https://<account>.blob.core.windows.net/<container>. Only a storage emulator on a test network may use http: "
                    + "set Journal.AllowHttp = $true in the profile (or -JournalAllowHttp).", where);
            var auth = settings.Authentication ?? (options.JournalSecret is null ? JournalAuthentication.ManagedIdentity : JournalAuthentication.SharedKey);
            var credential = CreateCredential(settings, auth, options, where);
            return new AzureBlobJournalStore(uri, credential, new AzureBlobJournalOptions
            {
                LeaseDuration = TimeSpan.FromSeconds(settings.LeaseSeconds),
                BlobPrefix = settings.BlobPrefix,
            }, options.JournalHttpHandler?.Invoke());
        }

        private static AzureStorageCredential CreateCredential(BlobJournalSettings settings, JournalAuthentication auth, UpgradeConnectionOptions options, string where)
        {
            var secret = options.JournalSecret;
            if (auth == JournalAuthentication.ManagedIdentity)
            {
                if (secret is not null)
                    throw new BbException("JournalParameterConflict", BbErrorCategory.InvalidArgument,
                        $"-JournalCredential was given but the journal {where} authenticates with the managed identity. "
                        + "Add -JournalAuthentication SharedKey, Sas or Token to use the credential, or leave it out.", "JournalCredential");
                return ManagedIdentity(settings, options);
            }
            if (secret is null || secret.Length == 0)
                throw new BbException("JournalCredentialMissing", BbErrorCategory.InvalidArgument,
                    $"The journal {where} uses {auth} authentication and needs -JournalCredential: "
                    + (auth == JournalAuthentication.SharedKey ? "user name = the storage account, password = one of its access keys."
                        : auth == JournalAuthentication.Sas ? "password = a SAS token for the container (permissions racw); the user name is not used."
                        : "password = a bearer token for https://storage.azure.com/ (Get-AzAccessToken -ResourceUrl https://storage.azure.com/ -AsSecureString)."),
                    "JournalCredential");
            switch (auth)
            {
                case JournalAuthentication.SharedKey:
                    var account = options.JournalAccountName;
                    if (string.IsNullOrWhiteSpace(account))
                        throw new BbException("JournalCredentialMissing", BbErrorCategory.InvalidArgument,
                            $"Shared Key authentication to {where} needs the storage account as -JournalCredential's user name.", "JournalCredential");
                    if (!IsBase64(secret))
                        throw new BbException("JournalStorageInvalidKey", BbErrorCategory.InvalidArgument,
                            $"The access key of storage account '{account}' (-JournalCredential's password) is not base64. Copy key1 or key2 from the account's 'Access keys' page.",
                            "JournalCredential");
                    return AzureStorageCredential.SharedKey(account!.Trim(), secret);
                case JournalAuthentication.Sas:
                    return AzureStorageCredential.Sas(secret);
                default:
                    if (settings.ContainerUri.Scheme != Uri.UriSchemeHttps && !settings.ContainerUri.IsLoopback)
                        throw new BbException("JournalStorageInsecure", BbErrorCategory.SecurityError,
                            $"A bearer token is only sent over https; {where} is http.", where);
                    return AzureStorageCredential.Bearer(secret);
            }
        }

        /// <summary>
        /// Tokens for https://storage.azure.com/ from the managed identity, the way the Application Gateway provider gets
        /// its tokens (Azure Automation's IDENTITY_ENDPOINT/IDENTITY_HEADER, else the VM metadata endpoint), cached until
        /// shortly before they expire and fetched again for long runs.
        /// </summary>
        private static AzureStorageCredential ManagedIdentity(BlobJournalSettings settings, UpgradeConnectionOptions options)
        {
            var identity = new LoadBalancerDescription(LoadBalancerKind.AzureAppGateway, new[] { settings.ContainerUri.GetLeftPart(UriPartial.Path) }, "journal")
            {
                AzureAuthentication = AzureAuthentication.ManagedIdentity,
                AzureResource = StorageResource,
                ClientId = settings.ClientId,
            };
            if (options.IdentityEndpoint is not null) identity.IdentityEndpoint = options.IdentityEndpoint;
            if (options.ImdsEndpoint is not null) identity.ImdsEndpoint = options.ImdsEndpoint;
            var http = options.JournalHttpHandler is { } h ? Http.HttpClientFactory.Create(IdentityPolicy, h()) : IdentityHttp.Value;
            var tokens = new AzureTokenSource(identity, http);
            return AzureStorageCredential.Bearer(async ct => ToSecure(await tokens.GetTokenAsync(false, ct).ConfigureAwait(false)));
        }

        private static SecureString ToSecure(string value)
        {
            var s = new SecureString();
            foreach (var c in value) s.AppendChar(c);
            s.MakeReadOnly();
            return s;
        }

        private static bool IsBase64(SecureString secret)
        {
            try
            {
                Convert.FromBase64String(Api.ZduCredential.Reveal(secret));
                return true;
            }
            catch (FormatException)
            {
                return false;
            }
        }

        /// <summary>
        /// An absolute http(s) container URI without query, user info or fragment; <paramref name="why"/> says what is
        /// wrong without echoing a query string (it may hold a SAS).
        /// </summary>
        public static bool TryParseContainerUri(string text, out Uri? uri, out string? why)
        {
            uri = null;
            var shown = (text ?? "").Trim();
            var q = shown.IndexOfAny(new[] { '?', '#' });
            if (q >= 0) shown = shown.Substring(0, q) + "?...";
            if (!Uri.TryCreate((text ?? "").Trim(), UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttps && u.Scheme != Uri.UriSchemeHttp) || u.Host.Length == 0)
            {
                why = $"'{shown}' is not an absolute https URI of a container such as https://<account>.blob.core.windows.net/<container>.";
                return false;
            }
            if (u.Query.Length > 0 || u.Fragment.Length > 0)
            {
                why = $"'{shown}' has a query string. Give the container without it and pass a SAS as -JournalCredential's password (-JournalAuthentication Sas), so it never appears in messages or the profile.";
                return false;
            }
            if (u.UserInfo.Length > 0)
            {
                why = $"'{u.GetLeftPart(UriPartial.Scheme)}***@{u.Authority}{u.AbsolutePath}' has user info; give the account and key as -JournalCredential instead.";
                return false;
            }
            if (u.AbsolutePath.Trim('/').Length == 0)
            {
                why = $"'{shown}' names no container: add it, e.g. {u.GetLeftPart(UriPartial.Authority)}/bitbucket-zdu.";
                return false;
            }
            uri = u;
            why = null;
            return true;
        }
    }
}
