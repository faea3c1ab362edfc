using System.Net;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.TestSupport;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade.Journal;

/// <summary>The blob journal against Azurite: entries, auth kinds, errors, and the lease as the run lock.</summary>
public sealed class AzureBlobJournalStoreTests : IClassFixture<AzuriteFixture>
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly AzuriteFixture _azurite;

    public AzureBlobJournalStoreTests(AzuriteFixture azurite) => _azurite = azurite;

    private static JournalEntry Entry(string kind, string? step = null, string? message = null) => new()
    {
        Time = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero),
        RunId = "run-1",
        Kind = kind,
        Step = step,
        Node = step?.Split('/')[0],
        Message = message,
    };

    [Fact]
    public async Task Entries_round_trip_through_an_append_blob()
    {
        using var store = await _azurite.NewContainerAsync();
        Assert.Empty(await store.ReadAsync("prod", None));

        var started = Entry(JournalKinds.RunStarted);
        started.NodeOrder = new List<string> { "node-2", "node-1" };
        started.FromVersion = "8.19.3";
        started.TargetVersion = "8.19.4";
        await store.AppendAsync("prod", started, None);
        await store.AppendAsync("prod", Entry(JournalKinds.StepDone, "node-2/stop", "stopped, \"quoted\" and ünïcode"), None);
        await store.AppendAsync("prod", Entry(JournalKinds.StepBegin, "node-2/install"), None);

        // A new store (another job) reads what the first wrote.
        using var other = new AzureBlobJournalStore(store.ContainerUri, AzuriteFixture.SharedKey());
        var read = await other.ReadAsync("prod", None);
        Assert.Equal(new[] { JournalKinds.RunStarted, JournalKinds.StepDone, JournalKinds.StepBegin }, read.Select(e => e.Kind));
        Assert.Equal(new[] { "node-2", "node-1" }, read[0].NodeOrder);
        Assert.Equal("8.19.4", read[0].TargetVersion);
        Assert.Equal("stopped, \"quoted\" and ünïcode", read[1].Message);
        Assert.Equal("node-2/install", read[2].Step);
        Assert.Empty(await other.ReadAsync("staging", None));

        // The other store continues it, and the first sees the new line.
        await other.AppendAsync("prod", Entry(JournalKinds.StepDone, "node-2/install"), None);
        Assert.Equal(4, (await store.ReadAsync("prod", None)).Count);
        Assert.EndsWith("/prod.journal.jsonl", store.Describe("prod"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Blob_calls_are_logged_to_the_ambient_sink_without_the_SAS()
    {
        using var keyed = await _azurite.NewContainerAsync();
        var sas = AzuriteFixture.AccountSas("rwdlac", DateTimeOffset.UtcNow.AddHours(1));
        var lines = new List<string>();
        using var viaSas = new AzureBlobJournalStore(keyed.ContainerUri, AzureStorageCredential.Sas(Canary.Secure("?" + sas)));

        using (Core.Api.ZduDiagnostics.ReportTo(lines.Add))
            await viaSas.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);

        Assert.Contains(lines, l => l.StartsWith("journal: PUT " + keyed.ContainerUri.AbsoluteUri + "/prod.journal.jsonl -> 20", StringComparison.Ordinal));
        var all = string.Join("\n", lines);
        Assert.DoesNotContain("sig=", all);
        Assert.DoesNotContain(sas.Split("sig=")[1].Split('&')[0], all);
        Assert.DoesNotContain("?", all);
    }

    [Fact]
    public async Task An_append_from_a_writer_that_did_not_see_the_latest_line_is_refused()
    {
        using var a = await _azurite.NewContainerAsync();
        using var b = new AzureBlobJournalStore(a.ContainerUri, AzuriteFixture.SharedKey());
        await a.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);
        Assert.Single(await b.ReadAsync("prod", None));
        await a.AppendAsync("prod", Entry(JournalKinds.StepBegin, "node-1/stop"), None);

        var ex = await Assert.ThrowsAsync<BbException>(() => b.AppendAsync("prod", Entry(JournalKinds.StepBegin, "node-1/stop"), None));
        Assert.Equal("JournalConflict", ex.ErrorId);
        Assert.Equal(2, (await a.ReadAsync("prod", None)).Count);
    }

    [Fact]
    public async Task The_lease_excludes_a_second_run_past_its_duration_while_renewed_and_is_released_at_the_end()
    {
        // LockWait zero: the fail-fast option, refused at once instead of waiting for the lease to expire.
        var options = new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), RenewInterval = TimeSpan.FromSeconds(2), LockWait = TimeSpan.Zero };
        using var first = await _azurite.NewContainerAsync(options);
        using var second = new AzureBlobJournalStore(first.ContainerUri, AzuriteFixture.SharedKey(), options);
        var owner = new LockOwner("automation-worker-7", 4242);

        var held = (BlobLease)await first.AcquireLockAsync("prod", owner, None);
        Assert.Null(held.TookOverFrom);
        await first.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);

        var refused = await Assert.ThrowsAsync<BbException>(() => second.AcquireLockAsync("prod", new LockOwner("other", 1), None));
        Assert.Equal("JournalLocked", refused.ErrorId);
        Assert.Contains("process 4242 on automation-worker-7", refused.Message, StringComparison.Ordinal);
        Assert.Contains(first.Describe("prod"), refused.Message, StringComparison.Ordinal);
        // Without the lease nobody else can write the journal either.
        var write = await Assert.ThrowsAsync<BbException>(() => second.AppendAsync("prod", Entry(JournalKinds.RunStarted), None));
        Assert.Equal("JournalLocked", write.ErrorId);

        // Renewed in the background: still held after more than the lease's 15 s.
        await Eventually.UntilAsync(() => held.Renewals >= 8, TimeSpan.FromSeconds(40), "eight renewals (16 s at 2 s)");
        Assert.Null(held.LastRenewError);
        var still = await Assert.ThrowsAsync<BbException>(() => second.AcquireLockAsync("prod", new LockOwner("other", 1), None));
        Assert.Equal("JournalLocked", still.ErrorId);
        await first.AppendAsync("prod", Entry(JournalKinds.RunCompleted), None);

        // Released at the end: the next run takes it at once, and knows it was a clean release, not a crash.
        await held.DisposeAsync();
        await using var next = await second.AcquireLockAsync("prod", new LockOwner("other", 1), None);
        Assert.Null(next.TookOverFrom);
        Assert.Equal(2, (await second.ReadAsync("prod", None)).Count);
    }

    [Fact]
    public async Task A_dead_runs_lease_is_waited_for_with_progress_then_taken_over()
    {
        var options = new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), RenewInterval = TimeSpan.FromSeconds(2) };
        var dead = await _azurite.NewContainerAsync(options);
        await dead.AcquireLockAsync("prod", new LockOwner("automation-worker-3", 3131), None);
        await dead.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);
        dead.Dispose(); // the job was unloaded: nobody renews or releases the lease

        using var next = new AzureBlobJournalStore(dead.ContainerUri, AzuriteFixture.SharedKey(), options);
        var told = new List<string>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await using var taken = await next.AcquireLockAsync("prod", new LockOwner("automation-worker-4", 4141), told.Add, None);
        Assert.Equal("process 3131 on automation-worker-3", taken.TookOverFrom?.ToString().Split(" since ")[0]);
        Assert.Contains("Waiting up to 25 s", told[0], StringComparison.Ordinal);   // 15 s lease + margin
        Assert.Contains("process 3131", told[0], StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25) + AzureBlobJournalStore.LockWaitMargin, $"took {watch.Elapsed}");
        await next.AppendAsync("prod", Entry(JournalKinds.RunResumed), None);
        Assert.Equal(2, (await next.ReadAsync("prod", None)).Count);
    }

    [Fact]
    public async Task A_live_runs_lease_is_still_refused_after_a_bounded_wait_on_the_engines_clock()
    {
        var options = new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), RenewInterval = TimeSpan.FromSeconds(2) };
        using var live = await _azurite.NewContainerAsync(options);
        await using var held = await live.AcquireLockAsync("prod", new LockOwner("automation-worker-5", 5151), None);

        // The waiting run's clock is virtual: its 25 s wait (15 s lease + margin) is paced and timed by that clock, so it
        // costs no real time, and the holder's lease, renewed on the storage's real clock, is still held at its end.
        var clock = new VirtualClock();
        using var other = new AzureBlobJournalStore(live.ContainerUri, AzuriteFixture.SharedKey(),
            new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), Clock = clock.ToUpgradeClock() });
        var told = new List<string>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<BbException>(() => other.AcquireLockAsync("prod", new LockOwner("other", 1), told.Add, None));
        Assert.Equal("JournalLocked", refused.ErrorId);
        Assert.Contains("still held after waiting 25 s", refused.Message, StringComparison.Ordinal);
        Assert.Contains("process 5151 on automation-worker-5", refused.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(25), clock.Now); // 1 s polls on the engine's clock up to the limit, not on the wall clock
        Assert.Contains("Waiting up to 25 s", told[0], StringComparison.Ordinal);
        Assert.Equal(new[] { "10 s of up to 25 s.", "20 s of up to 25 s." }, told.Skip(1).Select(m => m.Split(": ")[^1]));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"waited {watch.Elapsed} of real time: the wait ignored the engine's clock");
    }

    [Fact]
    public async Task A_SAS_token_works_and_no_secret_reaches_a_message()
    {
        using var keyed = await _azurite.NewContainerAsync();
        await keyed.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);

        var sas = AzuriteFixture.AccountSas("rwdlac", DateTimeOffset.UtcNow.AddHours(1));
        using var viaSas = new AzureBlobJournalStore(keyed.ContainerUri, AzureStorageCredential.Sas(Canary.Secure("?" + sas)));
        await viaSas.AppendAsync("prod", Entry(JournalKinds.StepDone, "node-1/stop"), None);
        Assert.Equal(2, (await viaSas.ReadAsync("prod", None)).Count);
        await using (var l = await viaSas.AcquireLockAsync("prod", new LockOwner("sas-run", 7), None))
            await viaSas.AppendAsync("prod", Entry(JournalKinds.RunCompleted), None);
        Assert.Equal(3, (await keyed.ReadAsync("prod", None)).Count);

        // A wrong key (the canary, base64) and a forged SAS: refused with the storage's reason, and no secret shown.
        var wrongKey = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Canary.Password + Canary.Password));
        using var badKey = new AzureBlobJournalStore(keyed.ContainerUri, AzureStorageCredential.SharedKey(AzuriteFixture.Account, Canary.Secure(wrongKey)));
        var denied = await Assert.ThrowsAsync<BbException>(() => badKey.ReadAsync("prod", None));
        Assert.Equal("JournalStorageDenied", denied.ErrorId);
        Assert.DoesNotContain(wrongKey, denied.ToString(), StringComparison.Ordinal);
        Canary.AssertAbsent(denied.ToString(), "the Shared Key error");

        var forged = sas.Replace("sig=", "sig=" + Canary.Token, StringComparison.Ordinal);
        using var badSas = new AzureBlobJournalStore(keyed.ContainerUri, AzureStorageCredential.Sas(Canary.Secure(forged)));
        var refused = await Assert.ThrowsAsync<BbException>(() => badSas.AppendAsync("prod", Entry(JournalKinds.RunStarted), None));
        Assert.Equal("JournalStorageDenied", refused.ErrorId);
        Canary.AssertAbsent(refused.ToString(), "the SAS error");
        Assert.DoesNotContain("sig=", refused.ToString(), StringComparison.Ordinal);
        Assert.Contains("SAS token (hidden)", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_torn_last_line_is_ignored_and_damage_before_it_is_an_error()
    {
        using var store = await _azurite.NewContainerAsync();
        await store.AppendAsync("prod", Entry(JournalKinds.RunStarted), None);
        await AppendRawAsync(store, "prod", "{\"time\":\"2026-11-26T12:00:00+00:00\",\"runId\":\"run-1\",\"ki");
        Assert.Single(await store.ReadAsync("prod", None));

        await AppendRawAsync(store, "prod", "\n");
        Assert.Single(await store.ReadAsync("prod", None)); // this store now knows the blob's length again
        await store.AppendAsync("prod", Entry(JournalKinds.StepBegin, "node-1/stop"), None);
        var ex = await Assert.ThrowsAsync<BbException>(() => store.ReadAsync("prod", None));
        Assert.Equal("JournalCorrupt", ex.ErrorId);
        Assert.Contains(store.Describe("prod") + " is damaged at line 2", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Appends bytes as another tool (or a crash mid-line) would: a raw Append Block, Shared Key signed.</summary>
    private static async Task AppendRawAsync(AzureBlobJournalStore store, string cluster, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, store.BlobUri(cluster) + "?comp=appendblock")
        {
            Content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(text)),
        };
        request.Headers.Add("x-ms-version", AzureBlobJournalStore.ApiVersion);
        request.Headers.Add("x-ms-date", DateTimeOffset.UtcNow.ToString("r", System.Globalization.CultureInfo.InvariantCulture));
        await AzuriteFixture.SharedKey().AuthorizeAsync(request, None);
        using var http = new HttpClient();
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task A_missing_container_says_to_create_it()
    {
        using var store = new AzureBlobJournalStore(_azurite.Container("no-such-container"), AzuriteFixture.SharedKey());
        var ex = await Assert.ThrowsAsync<BbException>(() => store.AcquireLockAsync("prod", new LockOwner("h", 1), None));
        Assert.Equal("JournalStorageNotFound", ex.ErrorId);
        Assert.Contains("no-such-container", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bearer_token_goes_in_the_Authorization_header_over_https_only()
    {
        var handler = new RecordingHandler();
        var token = 0;
        using var store = new AzureBlobJournalStore(new Uri("https://account.blob.core.windows.net/journal"),
            AzureStorageCredential.Bearer(_ => Task.FromResult(Canary.Secure(Canary.Token + (++token)))), null, handler);
        Assert.Empty(await store.ReadAsync("prod", None));
        Assert.Empty(await store.ReadAsync("prod", None));
        Assert.Equal(new[] { "Bearer " + Canary.Token + "1", "Bearer " + Canary.Token + "2" }, handler.Authorizations);
        Assert.All(handler.Versions, v => Assert.Equal(AzureBlobJournalStore.ApiVersion, v));

        var insecure = Assert.Throws<BbException>(() => new AzureBlobJournalStore(new Uri("http://account.blob.core.windows.net/journal"),
            AzureStorageCredential.Bearer(Canary.Secure(Canary.Token))));
        Assert.Equal("JournalStorageInsecure", insecure.ErrorId);
        var query = Assert.Throws<BbException>(() => new AzureBlobJournalStore(new Uri("https://account.blob.core.windows.net/journal?sig=" + Canary.Token),
            AzuriteFixture.SharedKey()));
        Assert.Equal("JournalStorageInvalidUri", query.ErrorId);
        Canary.AssertAbsent(query.Message, "the invalid URI error");
        Assert.Equal("bearer token (hidden)", AzureStorageCredential.Bearer(Canary.Secure(Canary.Token)).ToString());
    }

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public List<string> Authorizations { get; } = new();
        public List<string> Versions { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Authorizations.Add(string.Join(",", request.Headers.GetValues("Authorization")));
            Versions.Add(string.Join(",", request.Headers.GetValues("x-ms-version")));
            var r = new HttpResponseMessage(HttpStatusCode.NotFound) { RequestMessage = request, Content = new StringContent("") };
            r.Headers.Add("x-ms-error-code", "BlobNotFound");
            return Task.FromResult(r);
        }
    }
}

/// <summary>A run killed mid-upgrade leaves its lease; it expires and a resumed run continues from the blob journal.</summary>
public sealed class AzureBlobJournalResumeTests : IClassFixture<AzuriteFixture>
{
    private readonly AzuriteFixture _azurite;

    public AzureBlobJournalResumeTests(AzuriteFixture azurite) => _azurite = azurite;

    [Fact]
    public async Task A_crashed_runs_lease_expires_and_a_resumed_run_continues_from_the_journal()
    {
        var options = new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), RenewInterval = TimeSpan.FromSeconds(2) };
        using var f = new UpgradeFixture();
        var crashed = await _azurite.NewContainerAsync(options);
        var process = new FakeProcess();
        var killing = new KillingJournal(crashed, process, killAt: 30) { WriteBeforeKill = true };

        await Assert.ThrowsAnyAsync<Exception>(() => f.Runner(killing, process).RunAsync(f.Profile, Options(40001), CancellationToken.None));
        Assert.True(killing.Fired);
        crashed.Dispose(); // the job's sandbox is gone: nobody renews or releases the lease
        var before = await new AzureBlobJournalStore(crashed.ContainerUri, AzuriteFixture.SharedKey()).ReadAsync("prod", CancellationToken.None);
        Assert.Equal(30, before.Count);
        Assert.False(JournalRun.Last(before)!.Completed);

        // The next job (another sandbox, a fresh store) finds the lease still held, waits for it to expire (saying so),
        // takes over and finishes: one -Resume, however long the dead job's lease still had to run.
        using var resumedStore = new AzureBlobJournalStore(crashed.ContainerUri, AzuriteFixture.SharedKey(), options);
        var resumed = await f.Runner(resumedStore).RunAsync(f.Profile, Options(40002, resume: true), CancellationToken.None);

        Assert.True(resumed.Report!.Succeeded, resumed.Report.Summary);
        Assert.Contains(f.Host.Warnings, w => w.Contains("Waiting up to", StringComparison.Ordinal) && w.Contains("process 40001", StringComparison.Ordinal));
        Assert.True(f.World.AllOn(To));
        Assert.Contains(f.Host.Warnings, w => w.Contains("process 40001", StringComparison.Ordinal) && w.Contains("Took over", StringComparison.Ordinal));
        foreach (var node in new[] { "node-1", "node-2", "node-3" })
        {
            Assert.Equal(1, f.World.Count(node + ":stop"));
            Assert.Equal(1, f.World.Count(node + ":install:" + To));
        }
        var after = await resumedStore.ReadAsync("prod", CancellationToken.None);
        Assert.Equal(before.Select(e => e.Kind), after.Take(before.Count).Select(e => e.Kind));
        Assert.Contains(after.Skip(before.Count), e => e.Kind == JournalKinds.RunResumed);
        Assert.Equal(JournalKinds.RunCompleted, after[^1].Kind);
    }
}
