using System.Collections;
using System.Net;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Core.Tests.Upgrade.Journal;

/// <summary>How the journal store is chosen from the profile and options; managed identity against a recording handler.</summary>
public sealed class JournalStoreFactoryTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    private ClusterProfile Profile(Hashtable? journal)
    {
        var data = _f.ProfileData(UpgradeFixture.To);
        if (journal is not null) data["Journal"] = journal;
        return ClusterProfileReader.Read(data);
    }

    /// <summary>Answers the identity endpoint with a token and the storage account with "no such blob yet".</summary>
    private sealed class RecordingHandler : HttpMessageHandler
    {
        public List<(Uri Uri, string? Authorization, string? Metadata)> Requests { get; } = new();
        public HttpStatusCode IdentityStatus { get; set; } = HttpStatusCode.OK;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Requests)
                Requests.Add((request.RequestUri!, request.Headers.TryGetValues("Authorization", out var a) ? a.Single() : null,
                    request.Headers.TryGetValues("Metadata", out var m) ? m.Single() : null));
            if (request.RequestUri!.AbsolutePath == "/identity")
                return Task.FromResult(new HttpResponseMessage(IdentityStatus)
                {
                    Content = new StringContent(IdentityStatus == HttpStatusCode.OK
                        ? $"{{\"access_token\":\"{Canary.Token}\",\"expires_in\":3600,\"token_type\":\"Bearer\"}}"
                        : "{\"error\":\"invalid_request\",\"error_description\":\"No managed identity is assigned.\"}"),
                });
            var r = new HttpResponseMessage(HttpStatusCode.NotFound);
            r.Headers.Add("x-ms-error-code", "BlobNotFound");
            return Task.FromResult(r);
        }
    }

    [Fact]
    public async Task Managed_identity_asks_the_identity_endpoint_for_a_storage_token_once_and_sends_it_as_bearer()
    {
        var profile = Profile(new Hashtable { ["Uri"] = "https://stzdu.blob.core.windows.net/bitbucket-zdu", ["ClientId"] = "11111111-2222-3333-4444-555555555555" });
        var handler = new RecordingHandler();
        var options = new UpgradeConnectionOptions { JournalHttpHandler = () => handler, IdentityEndpoint = new Uri("http://127.0.0.1:1/identity") };

        using var store = (AzureBlobJournalStore)JournalStoreFactory.Create(profile, options);
        Assert.Empty(await store.ReadAsync("prod", CancellationToken.None));
        Assert.Empty(await store.ReadAsync("prod", CancellationToken.None));

        var identity = Assert.Single(handler.Requests, r => r.Uri.AbsolutePath == "/identity");
        Assert.Contains("resource=" + Uri.EscapeDataString("https://storage.azure.com/"), identity.Uri.Query);
        Assert.Contains("client_id=11111111-2222-3333-4444-555555555555", identity.Uri.Query);
        Assert.Equal("True", identity.Metadata);
        var reads = handler.Requests.Where(r => r.Uri.Host == "stzdu.blob.core.windows.net").ToList();
        Assert.Equal(2, reads.Count);
        Assert.All(reads, r => Assert.Equal("Bearer " + Canary.Token, r.Authorization));
        Assert.All(reads, r => Assert.Equal("https", r.Uri.Scheme));
        Assert.Equal("https://stzdu.blob.core.windows.net/bitbucket-zdu/prod.journal.jsonl", store.Describe("prod"));
    }

    [Fact]
    public async Task A_missing_managed_identity_is_a_clear_authentication_error_without_the_token()
    {
        var profile = Profile(new Hashtable { ["Uri"] = "https://stzdu.blob.core.windows.net/bitbucket-zdu", ["Authentication"] = "ManagedIdentity" });
        var handler = new RecordingHandler { IdentityStatus = HttpStatusCode.BadRequest };
        var options = new UpgradeConnectionOptions { JournalHttpHandler = () => handler, IdentityEndpoint = new Uri("http://127.0.0.1:1/identity") };

        using var store = (AzureBlobJournalStore)JournalStoreFactory.Create(profile, options);
        var ex = await Assert.ThrowsAsync<BbException>(() => store.AcquireLockAsync("prod", LockOwner.Current, CancellationToken.None));

        Assert.Equal("AzureAuthenticationFailed", ex.ErrorId);
        Assert.Contains("No managed identity is assigned", ex.Message);
        Assert.DoesNotContain(handler.Requests, r => r.Uri.Host == "stzdu.blob.core.windows.net");
    }

    [Fact]
    public void Without_blob_settings_the_folder_store_is_used_and_JournalPath_overrides_the_profile()
    {
        Assert.IsType<FileJournalStore>(JournalStoreFactory.Create(Profile(null), new UpgradeConnectionOptions()));
        var blob = Profile(new Hashtable { ["Uri"] = "https://stzdu.blob.core.windows.net/bitbucket-zdu" });
        var folder = Assert.IsType<FileJournalStore>(JournalStoreFactory.Create(blob, new UpgradeConnectionOptions { JournalPath = _f.Directory }));
        Assert.Equal(_f.Directory, folder.Directory);
    }

    [Fact]
    public void Parameters_override_the_profile_and_keep_its_other_journal_settings()
    {
        var profile = Profile(new Hashtable { ["Uri"] = "https://a.blob.core.windows.net/one", ["BlobPrefix"] = "bitbucket/", ["LeaseSeconds"] = 20, ["Authentication"] = "Sas" });
        var options = new UpgradeConnectionOptions { JournalUri = "https://b.blob.core.windows.net/two", JournalAuthentication = JournalAuthentication.SharedKey, JournalAccountName = "b", JournalSecret = Canary.Secure(Convert.ToBase64String(new byte[32])) };

        var settings = JournalStoreFactory.Resolve(profile, options)!;
        Assert.Equal("https://b.blob.core.windows.net/two", settings.ContainerUri.AbsoluteUri);
        Assert.Equal(JournalAuthentication.SharedKey, settings.Authentication);
        Assert.Equal("-JournalUri", settings.Place);
        using var store = (AzureBlobJournalStore)JournalStoreFactory.Create(profile, options);
        Assert.Equal("https://b.blob.core.windows.net/two/bitbucket/prod.journal.jsonl", store.Describe("prod"));
        Assert.Equal(TimeSpan.FromSeconds(20), store.Options.LeaseDuration);
    }

    [Theory]
    [InlineData("Uri", "ftp://x/y", "Journal.Uri")]
    [InlineData("LeaseSeconds", 5, "Journal.LeaseSeconds")]
    [InlineData("AllowHttp", "maybe", "Journal.AllowHttp")]
    [InlineData("Lease", 20, "Journal.Lease")]
    public void The_profile_names_the_place_of_a_bad_journal_setting(string key, object value, string place)
    {
        var journal = new Hashtable { ["Uri"] = "https://stzdu.blob.core.windows.net/bitbucket-zdu", [key] = value };
        var data = _f.ProfileData(UpgradeFixture.To);
        data["Journal"] = journal;

        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data));

        Assert.Contains(ex.Issues, i => i.Place == place);
    }

    public void Dispose() => _f.Dispose();
}
