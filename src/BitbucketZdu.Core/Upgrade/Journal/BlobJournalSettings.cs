using System;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>How the upgrade cmdlets authenticate to the Azure Storage container of the journal.</summary>
    public enum JournalAuthentication
    {
        /// <summary>The managed identity of the Automation account or VM (IDENTITY_ENDPOINT, else IMDS): a token for https://storage.azure.com/.</summary>
        ManagedIdentity,
        /// <summary>-JournalCredential: user name = storage account, password = one of its access keys.</summary>
        SharedKey,
        /// <summary>-JournalCredential: password = a SAS token for the container (user name is not used).</summary>
        Sas,
        /// <summary>-JournalCredential: password = a bearer token for https://storage.azure.com/ (Get-AzAccessToken); it is not renewed.</summary>
        Token,
    }

    /// <summary>
    /// The profile's <c>Journal = @{ Uri = ...; Authentication = ... }</c>: the journal and its lock live in an Azure
    /// Storage container (<see cref="AzureBlobJournalStore"/>) instead of a folder. No secrets: those come from
    /// -JournalCredential or the managed identity.
    /// </summary>
    public sealed class BlobJournalSettings
    {
        public BlobJournalSettings(Uri containerUri) => ContainerUri = containerUri ?? throw new ArgumentNullException(nameof(containerUri));

        /// <summary>The container, e.g. https://account.blob.core.windows.net/bitbucket-zdu (no query string).</summary>
        public Uri ContainerUri { get; }

        /// <summary>Null: SharedKey when a credential is given (-JournalCredential), else ManagedIdentity.</summary>
        public JournalAuthentication? Authentication { get; set; }

        /// <summary>A user-assigned managed identity's client id; null for the system-assigned one.</summary>
        public string? ClientId { get; set; }

        /// <summary>Prefix of the blob names inside the container, e.g. <c>bitbucket/</c>.</summary>
        public string BlobPrefix { get; set; } = "";

        /// <summary>Lease length in seconds (15 to 60): a crashed run's lock frees itself this long after its last renewal.</summary>
        public int LeaseSeconds { get; set; } = 60;

        /// <summary>Allow http:// to a host that is not loopback (a storage emulator on another machine). Off: http only to loopback.</summary>
        public bool AllowHttp { get; set; }

        /// <summary>Where the settings came from, for messages: <c>Journal</c> (profile) or <c>-JournalUri</c>.</summary>
        public string Place { get; set; } = "Journal";

        public override string ToString() => $"{ContainerUri.GetLeftPart(UriPartial.Path)} ({Authentication?.ToString() ?? "authentication by credential"})";
    }
}
