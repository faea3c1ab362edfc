using System.Collections.Concurrent;
using System.Management.Automation;
using System.Text.Json;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Tests.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.TestSupport;
using BitbucketZdu.Upgrade;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>The fake cluster behind the factory seam, with the journal store the cmdlets' options choose (the real JournalStoreFactory).</summary>
internal sealed class ChosenJournalPortsFactory : IUpgradePortsFactory
{
    private readonly UpgradeFixture _f;

    public ChosenJournalPortsFactory(UpgradeFixture f) => _f = f;

    public UpgradePorts Create(ClusterProfile profile, UpgradeConnectionOptions options)
    {
        var journal = JournalStoreFactory.Create(profile, options);
        var p = FakePorts.Create(_f.World, journal);
        return new UpgradePorts(p.Cluster, p.NodeApi, p.Rotation, p.Nodes, p.Journal, p.Clock, journal as IDisposable);
    }
}

/// <summary>
/// The upgrade cmdlets with the journal in an Azure blob container (Azurite, started by the fixture): a run writes
/// its journal there, a halted run is resumed by a new runspace reading the blob, a held lease refuses a second run,
/// and bad journal settings are refused with an ErrorId before anything changes.
/// </summary>
[Collection(UpgradePortsFactoryCollection.Name)]
public sealed class BlobJournalCmdletTests : IClassFixture<AzuriteFixture>, IClassFixture<BadInputReport>, IAsyncLifetime, IDisposable
{
    private const string Cmdlets = ",BitbucketZdu.Cmdlets.";
    private readonly AzuriteFixture _azurite;
    private readonly BadInputReport _report;
    private readonly UpgradeFixture _f = new();
    private readonly PowerShellHost _ps = new();
    private readonly IUpgradePortsFactory _previous = UpgradePortsFactory.Current;
    private readonly string _profile;
    private readonly Uri _container;

    public BlobJournalCmdletTests(AzuriteFixture azurite, BadInputReport report)
    {
        _azurite = azurite;
        _report = report;
        UpgradePortsFactory.Current = new ChosenJournalPortsFactory(_f);
        _container = _azurite.Container("journal-" + Guid.NewGuid().ToString("N")[..12]);
        _profile = Path.Combine(_f.Directory, "prod.psd1");
        var r = _ps.Run("New-BbClusterProfile -Path $p -ArchivePath $a -ArchiveSha256 $s -NodeName node-1,node-2,node-3 -JournalUri $u -JournalAuthentication SharedKey", Vars());
        Assert.Null(r.FirstError);
    }

    public async Task InitializeAsync()
    {
        using var store = Store();
        await store.CreateContainerIfMissingAsync(CancellationToken.None);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private AzureBlobJournalStore Store() => new(_container, AzuriteFixture.SharedKey());

    private Dictionary<string, object?> Vars() => new()
    {
        ["p"] = _profile,
        ["a"] = _f.ArchivePath,
        ["s"] = PreflightCheck.Sha256Of(_f.ArchivePath),
        ["u"] = _container.AbsoluteUri,
        ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
        ["jc"] = new PSCredential(AzuriteFixture.Account, Canary.Secure(AzuriteFixture.AccountKey)),
    };

    private async Task<IReadOnlyList<JournalEntry>> BlobJournal()
    {
        using var store = Store();
        return await store.ReadAsync("prod", CancellationToken.None);
    }

    [Fact]
    public async Task The_template_writes_the_Journal_setting_and_a_run_keeps_its_journal_in_the_blob()
    {
        Assert.Contains($"Journal = @{{ Uri = '{_container.AbsoluteUri}'; Authentication = 'SharedKey' }}", File.ReadAllText(_profile));

        var logPath = Path.Combine(Path.GetDirectoryName(_profile)!, "blob-run.log");
        var vars = Vars();
        vars["log"] = logPath;
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalCredential $jc -Confirm:$false -Verbose -LogPath $log", vars);

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.True(report.Succeeded);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(_container.AbsoluteUri + "/prod.journal.jsonl", report.JournalPath);
        Assert.Contains(r.Verbose, v => v.Contains("Journal of cluster 'prod': " + report.JournalPath));

        var journal = await BlobJournal();
        Assert.Equal(JournalKinds.RunStarted, journal[0].Kind);
        Assert.Equal(JournalKinds.RunCompleted, journal[^1].Kind);
        Assert.All(new[] { "node-1", "node-2", "node-3" }, n => Assert.Contains(journal, e => e.Step == n + "/install" && e.Kind == JournalKinds.StepDone));
        Assert.All(journal, e => Assert.Equal(report.RunId, e.RunId));
        Assert.False(File.Exists(_f.Journal.JournalFile("prod")), "nothing was journaled to a folder");
        Canary.AssertAbsent(r.AllText, "Invoke-BbRollingUpgrade output");
        Canary.AssertAbsent(JsonSerializer.Serialize(journal), "the blob journal");
        // The journal's own HTTP calls reach the -LogPath log, redacted (no SAS, no query string).
        var log = File.ReadAllText(logPath);
        Assert.Contains("journal: PUT", log);
        Assert.Contains("prod.journal.jsonl", log);
        Assert.DoesNotContain("sig=", log);
        Canary.AssertAbsent(log, "the -LogPath log");

        // The run released its lease: the next run takes it at once.
        using var next = Store();
        await using (await next.AcquireLockAsync("prod", new LockOwner("next-job", 1), CancellationToken.None)) { }
    }

    [Fact]
    public async Task A_halted_run_is_resumed_from_the_blob_by_a_new_runspace_and_finishes()
    {
        _f.World["node-2"].FailStartOnVersion = To;
        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalCredential $jc -Confirm:$false", Vars());
        Assert.Equal("UpgradeNodeFailed" + Cmdlets + "InvokeBbRollingUpgradeCommand", r.FirstError!.FullyQualifiedErrorId);
        var halted = await BlobJournal();
        Assert.Equal(JournalKinds.RunHalted, halted[^1].Kind);
        var runId = halted[0].RunId;

        // A new job: another runspace, nothing in memory from the first, only the blob.
        _f.World["node-2"].FailStartOnVersion = null;
        using var job2 = new PowerShellHost();
        var resumed = job2.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalCredential $jc -Confirm:$false -Resume", Vars());

        Assert.Null(resumed.FirstError);
        var report = (UpgradeReport)Assert.Single(resumed.Output).BaseObject;
        Assert.True(report.Succeeded);
        Assert.True(report.Resumed);
        Assert.Equal(runId, report.RunId);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-1:stop"));
        var journal = await BlobJournal();
        Assert.Contains(journal, e => e.Kind == JournalKinds.RunResumed && e.RunId == runId);
        Assert.Equal(JournalKinds.RunCompleted, journal[^1].Kind);
    }

    [Fact]
    public async Task A_second_run_while_the_lease_is_held_is_refused_and_changes_nothing()
    {
        // A live holder that renews a 15 s lease: the run waits for it to expire (holder's length + margin, 25 s), then is refused.
        using var other = new AzureBlobJournalStore(_container, AzuriteFixture.SharedKey(),
            new AzureBlobJournalOptions { LeaseDuration = TimeSpan.FromSeconds(15), RenewInterval = TimeSpan.FromSeconds(2) });
        await using var held = await other.AcquireLockAsync("prod", new LockOwner("runbook-job-7", 4242), CancellationToken.None);

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalCredential $jc -Confirm:$false", Vars());

        Assert.Equal("JournalLocked" + Cmdlets + "InvokeBbRollingUpgradeCommand", r.FirstError!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceExists, r.FirstError.CategoryInfo.Category);
        Assert.Contains("runbook-job-7", r.FirstError.Exception.Message);
        Assert.Empty(_f.World.Operations);
        Assert.Empty(r.Output);

        // Preflight alone (Test-BbClusterProfile) reports the held lease as a warning and changes nothing either.
        var t = _ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalCredential $jc", Vars());
        Assert.Null(t.FirstError);
        var finding = Assert.Single(t.Output.Select(o => (PreflightFinding)o.BaseObject), x => x.Check == "PreflightJournalLocked");
        Assert.Equal(FindingSeverity.Warning, finding.Severity);
        Assert.Equal("Journal", finding.Place);
        Assert.Empty(_f.World.Operations);
    }

    [Fact]
    public void Preflight_proves_the_blob_is_writable_and_the_lease_can_be_taken()
    {
        var r = _ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalCredential $jc", Vars());

        Assert.Null(r.FirstError);
        var findings = r.Output.Select(o => (PreflightFinding)o.BaseObject).ToList();
        var ok = Assert.Single(findings, x => x.Check == "PreflightJournal");
        Assert.Contains("writable", ok.Message);
        Assert.Contains("lease", ok.Message);
        Assert.Contains(findings, x => x.Check == "PreflightPassed");

        var wrong = Vars();
        wrong["jc"] = new PSCredential(AzuriteFixture.Account, Canary.Secure(Convert.ToBase64String(new byte[64])));
        var denied = _ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalCredential $jc", wrong);
        var bad = Assert.Single(denied.Output.Select(o => (PreflightFinding)o.BaseObject), x => x.Check == "PreflightJournalUnwritable");
        Assert.Equal(FindingSeverity.Error, bad.Severity);
        Assert.Contains("JournalStorageDenied", bad.Message);
    }

    public sealed record BadCase(string Script, string ErrorId, ErrorCategory Category, string? ProfileEdit = null, string? Says = null);

    private static readonly string CanarySas = $"sv=2019-12-12&ss=b&srt=sco&sp=racw&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig={Canary.Token}";

    public static readonly Dictionary<string, BadCase> BadCases = new()
    {
        ["Journal URI is not a URI"] = new("-JournalUri 'not a uri' -JournalCredential $jc", "JournalStorageInvalidUri", ErrorCategory.InvalidArgument, Says: "not an absolute https URI"),
        ["Journal URI names no container"] = new("-JournalUri 'https://acct.blob.core.windows.net/' -JournalCredential $jc", "JournalStorageInvalidUri", ErrorCategory.InvalidArgument, Says: "names no container"),
        ["Journal URI carries a SAS"] = new($"-JournalUri 'https://acct.blob.core.windows.net/journal?{CanarySas}' -JournalCredential $jc", "JournalStorageInvalidUri", ErrorCategory.InvalidArgument, Says: "query string"),
        ["Journal URI is ftp"] = new("-JournalUri 'ftp://acct.blob.core.windows.net/journal' -JournalCredential $jc", "JournalStorageInvalidUri", ErrorCategory.InvalidArgument),
        ["Journal over http to a remote host"] = new("-JournalUri 'http://storage.example.com/journal' -JournalCredential $jc", "JournalStorageInsecure", ErrorCategory.SecurityError, Says: "AllowHttp"),
        ["Journal profile http to a remote host"] = new("-JournalCredential $jc", "JournalStorageInsecure", ErrorCategory.SecurityError, ProfileEdit: "http://storage.example.com/journal"),
        ["Journal bearer token over http even when allowed"] = new("-JournalUri 'http://storage.example.com/journal' -JournalAllowHttp -JournalAuthentication Token -JournalCredential $jc", "JournalStorageInsecure", ErrorCategory.SecurityError),
        ["Journal Shared Key without credential"] = new("", "JournalCredentialMissing", ErrorCategory.InvalidArgument, Says: "-JournalCredential"),
        ["Journal SAS without credential"] = new("-JournalAuthentication Sas", "JournalCredentialMissing", ErrorCategory.InvalidArgument, Says: "SAS token"),
        ["Journal credential without a container"] = new("-JournalCredential $jc", "JournalParameterConflict", ErrorCategory.InvalidArgument, ProfileEdit: "", Says: "-JournalUri"),
        ["Journal folder and container together"] = new("-JournalPath $j -JournalUri $u -JournalCredential $jc", "JournalParameterConflict", ErrorCategory.InvalidArgument),
        ["Journal credential with managed identity"] = new("-JournalAuthentication ManagedIdentity -JournalCredential $jc", "JournalParameterConflict", ErrorCategory.InvalidArgument),
        ["Journal key is not base64"] = new("-JournalCredential $notbase64", "JournalStorageInvalidKey", ErrorCategory.InvalidArgument, Says: "base64"),
        ["Journal key is wrong"] = new("-JournalCredential $wrongkey", "JournalStorageDenied", ErrorCategory.PermissionDenied, Says: "Shared Key of account devstoreaccount1"),
        ["Journal SAS is forged"] = new("-JournalAuthentication Sas -JournalCredential $sas", "JournalStorageDenied", ErrorCategory.PermissionDenied),
        ["Journal container does not exist"] = new("-JournalUri $missing -JournalCredential $jc", "JournalStorageNotFound", ErrorCategory.ObjectNotFound, Says: "Create the container"),
        ["Journal profile authentication unknown"] = new("-JournalCredential $jc", "ProfileInvalidValue", ErrorCategory.InvalidData, ProfileEdit: "Authentication = 'Kerberos'", Says: "Journal.Authentication"),
        ["Journal profile also has JournalPath"] = new("-JournalCredential $jc", "ProfileInvalidValue", ErrorCategory.InvalidData, ProfileEdit: "JournalPath = '/tmp/j'", Says: "not both"),
    };

    public static IEnumerable<object[]> BadCaseNames => BadCases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(BadCaseNames))]
    public async Task Bad_journal_input_is_refused_before_anything_changes(string name)
    {
        var c = BadCases[name];
        var text = File.ReadAllText(_profile);
        var journalLine = text.Split('\n').Single(l => l.TrimStart().StartsWith("Journal = @{", StringComparison.Ordinal));
        if (c.ProfileEdit == "") text = text.Replace(journalLine, "");
        else if (c.ProfileEdit?.StartsWith("http", StringComparison.Ordinal) == true) text = text.Replace(_container.AbsoluteUri, c.ProfileEdit);
        else if (c.ProfileEdit?.StartsWith("Authentication", StringComparison.Ordinal) == true) text = text.Replace("Authentication = 'SharedKey'", c.ProfileEdit);
        else if (c.ProfileEdit is not null) text = text.Replace(journalLine, journalLine + "\n    " + c.ProfileEdit);
        File.WriteAllText(_profile, text);
        var vars = Vars();
        vars["j"] = Path.Combine(_f.Directory, "journal");
        vars["missing"] = _azurite.Container("missing-" + Guid.NewGuid().ToString("N")[..8]).AbsoluteUri;
        vars["notbase64"] = new PSCredential(AzuriteFixture.Account, Canary.Secure(Canary.Password));
        vars["wrongkey"] = new PSCredential(AzuriteFixture.Account, Canary.Secure(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Canary.Password + Canary.Password))));
        vars["sas"] = new PSCredential("sas", Canary.Secure(CanarySas));

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -Confirm:$false " + c.Script, vars);

        var journal = await BlobJournal();
        _report.AssertRefused(name, "Journal", r, c.ErrorId, c.Category, c.Says, _f.World.Operations.Count == 0 && journal.Count == 0);
        Assert.Empty(_f.World.Operations);
        Assert.Empty(journal);
    }

    [Fact]
    public void Http_to_a_remote_emulator_is_accepted_only_when_allowed()
    {
        var data = _f.ProfileData(To);
        data["Journal"] = new System.Collections.Hashtable { ["Uri"] = "http://azurite.lab.example:10000/devstoreaccount1/journal", ["AllowHttp"] = true };
        var profile = ClusterProfileReader.Read(data);
        var options = new UpgradeConnectionOptions { JournalAccountName = AzuriteFixture.Account, JournalSecret = Canary.Secure(AzuriteFixture.AccountKey) };

        using (var store = (AzureBlobJournalStore)JournalStoreFactory.Create(profile, options))
            Assert.Equal("http://azurite.lab.example:10000/devstoreaccount1/journal/prod.journal.jsonl", store.Describe("prod"));

        profile.Journal!.AllowHttp = false;
        var refused = Assert.Throws<BitbucketZdu.Core.BbException>(() => JournalStoreFactory.Create(profile, options));
        Assert.Equal("JournalStorageInsecure", refused.ErrorId);
        options.JournalAllowHttp = true;
        using (JournalStoreFactory.Create(profile, options) as IDisposable) { }
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _ps.Dispose();
        _f.Dispose();
    }
}
