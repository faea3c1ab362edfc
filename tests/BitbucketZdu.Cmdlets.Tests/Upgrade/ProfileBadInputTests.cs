using System.Management.Automation;
using System.Text.RegularExpressions;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.TestSupport;
using BitbucketZdu.Upgrade;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>
/// Bad input to the profile-driven cmdlets (New-/Test-BbClusterProfile, Invoke-BbRollingUpgrade, Invoke-BbNodeUpgrade)
/// and the node cmdlets, against the simulated cluster behind the cmdlets' factory seam: a broken or hostile profile
/// file, missing or malformed settings, a downgrade or a feature jump, nodes and members that do not match the cluster.
/// Each case must end in an error record with a stable ErrorId and category BEFORE anything changes: upgrade mode still
/// off, no journal or lock left, no node or load-balancer member touched, the profile file as it was. Rows go to the
/// same suite file as <see cref="BadInputTests"/> (merged by case).
/// </summary>
[Collection(UpgradePortsFactoryCollection.Name)]
public sealed class ProfileBadInputTests : IClassFixture<BadInputReport>, IDisposable
{
    private readonly BadInputReport _report;
    private readonly UpgradeFixture _f = new();
    private readonly PowerShellHost _ps = new();
    private readonly IUpgradePortsFactory _previous = UpgradePortsFactory.Current;
    private readonly string _profile;
    private readonly string _template;

    public ProfileBadInputTests(BadInputReport report)
    {
        _report = report;
        UpgradePortsFactory.Current = new FakeUpgradePortsFactory(_f);
        _profile = Path.Combine(_f.Directory, "prod.psd1");
        var r = _ps.Run("New-BbClusterProfile -Path $p -ArchivePath $a -ArchiveSha256 $s -NodeName node-1,node-2,node-3", new Dictionary<string, object?>
        {
            ["p"] = _profile,
            ["a"] = _f.ArchivePath,
            ["s"] = PreflightCheck.Sha256Of(_f.ArchivePath),
        });
        Assert.Null(r.FirstError);
        _template = File.ReadAllText(_profile);
    }

    /// <summary>A case: what to change in the valid template profile (or the cluster), what to run, what must refuse it.</summary>
    public sealed record Case(string Area, string Script, string ErrorId, ErrorCategory Category,
        Func<string, string>? Edit = null, Action<FakeWorld>? World = null, string? Says = null);

    private const string Run = "Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false";
    private const string Test = "Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j";
    private const string NodeUpgrade = "Invoke-BbNodeUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false";
    private const string Remote = "-HostName node-1.invalid -Transport Ssh -UserName bitbucket";

    /// <summary>The first line <c>Key = ...</c> of the template (at any depth) set to <paramref name="value"/>.</summary>
    private static Func<string, string> Set(string key, string value) => t => Replace(t, key, $"{key} = {value}");
    private static Func<string, string> Drop(string key) => t => Replace(t, key, "");
    private static Func<string, string> Swap(string from, string to) => t =>
    {
        Assert.Contains(from, t);
        var i = t.IndexOf(from, StringComparison.Ordinal);
        return t[..i] + to + t[(i + from.Length)..];
    };

    private static string Replace(string template, string key, string line)
    {
        var re = new Regex(@"^(?<indent>[ \t]*)" + Regex.Escape(key) + @"\s*=.*$", RegexOptions.Multiline);
        Assert.Matches(re, template);
        return re.Replace(template, m => m.Groups["indent"].Value + line, 1);
    }

    private static Func<string, string> Timeouts(string value) => Swap("    # Timeouts = @{", "    Timeouts = @{ " + value + " }\n    # was: @{");

    public static readonly IReadOnlyDictionary<string, Case> Cases = new Dictionary<string, Case>
    {
        // ---- the profile file itself
        ["Profile: -LoadBalancerCredential names no load balancer of the profile"] = new("Invoke-BbRollingUpgrade", Run + " -LoadBalancerCredential @{ nosuch = $cred }",
            "UpgradeUnknownLoadBalancerCredential", ErrorCategory.InvalidArgument, Says: "no load balancer of the profile"),
        ["Profile: -LoadBalancerCredential value that is no PSCredential"] = new("Test-BbClusterProfile", Test + " -LoadBalancerCredential @{ lb1 = 'plain-text' }",
            "UpgradeInvalidLoadBalancerCredential", ErrorCategory.InvalidArgument, Says: "must be a PSCredential"),
        ["Profile: CredentialAsset outside an Automation runbook"] = new("Test-BbClusterProfile", Test, "LoadBalancerCredentialAssetUnavailable", ErrorCategory.ObjectNotFound,
            Swap("Backend = 'bitbucket' }", "Backend = 'bitbucket'; CredentialAsset = 'lb-admin' }"), Says: "Get-AutomationPSCredential does not exist here"),
        ["Profile: load-balancer setting its kind does not take (or a secret)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnknownKey", ErrorCategory.InvalidData,
            Swap("Backend = 'bitbucket' }", "Backend = 'bitbucket'; Password = 'x' }"), Says: "not a setting of HAProxy"),
        ["Profile: path that does not exist"] = new("Test-BbClusterProfile", "Test-BbClusterProfile -ProfilePath (Join-Path $dir no-such.psd1)", "ProfileNotFound", ErrorCategory.ObjectNotFound, Says: "does not exist"),
        ["Profile: path is a folder"] = new("Invoke-BbRollingUpgrade", "Invoke-BbRollingUpgrade -ProfilePath $dir -Credential $cred -JournalPath $j -Confirm:$false", "ProfileIsDirectory", ErrorCategory.InvalidArgument, Says: "is a folder, not a file"),
        ["Profile: .psd1 with a syntax error"] = new("Test-BbClusterProfile", Test, "ProfileUnreadable", ErrorCategory.ParserError,
            Swap("    TargetVersion = '8.19.4'", "    TargetVersion = '8.19.4' '8.19.5'"), Says: "line 10, column"),
        ["Profile: .psd1 that runs code"] = new("Invoke-BbRollingUpgrade", Run, "ProfileNotData", ErrorCategory.InvalidData,
            Set("Name", "$(New-Item -ItemType File -Path '<work>/ran.txt'; 'prod')"), Says: "line 6 has code: $(New-Item"),
        ["Profile: .psd1 that reads a variable"] = new("Test-BbClusterProfile", Test, "ProfileNotData", ErrorCategory.InvalidData, Set("BaseUrl", "$env:BB_URL"), Says: "$env:BB_URL"),
        ["Profile: a list instead of a hashtable"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnreadable", ErrorCategory.InvalidData,
            t => "@( 'node-1', 'node-2' )", Says: "exactly one hashtable"),

        // ---- missing and malformed settings
        ["Profile: Name missing"] = new("Invoke-BbRollingUpgrade", Run, "ProfileMissingValue", ErrorCategory.InvalidData, Drop("Name          "), Says: "Name: Name is required"),
        ["Profile: BaseUrl missing"] = new("Invoke-BbRollingUpgrade", Run, "ProfileMissingValue", ErrorCategory.InvalidData, Drop("BaseUrl"), Says: "BaseUrl is required"),
        ["Profile: TargetVersion missing"] = new("Invoke-BbRollingUpgrade", Run, "ProfileMissingValue", ErrorCategory.InvalidData, Drop("TargetVersion"), Says: "TargetVersion is required"),
        ["Profile: Nodes missing"] = new("Invoke-BbRollingUpgrade", Run, "ProfileMissingValue", ErrorCategory.InvalidData,
            t => Regex.Replace(t, @"    Nodes\s*= @\(.*?\n    \)\n", "", RegexOptions.Singleline), Says: "Nodes is required"),
        ["Profile: TargetVersion '8.19' (malformed)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Set("TargetVersion", "'8.19'"), Says: "major.minor.bugfix"),
        ["Invoke-BbNodeUpgrade: TargetVersion 'latest' (malformed)"] = new("Invoke-BbNodeUpgrade", NodeUpgrade + " -Name node-2", "ProfileInvalidValue", ErrorCategory.InvalidData,
            Set("TargetVersion", "'latest'"), Says: "'latest' is not a Bitbucket version"),
        ["Profile: BaseUrl is not http(s)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Set("BaseUrl", "'ftp://bitbucket.example.com'"), Says: "BaseUrl: 'ftp://bitbucket.example.com' is not an http:// or https:// URL"),
        ["Profile: typo in a key (TargetVerison)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnknownKey", ErrorCategory.InvalidData, Swap("TargetVersion =", "TargetVerison ="), Says: "Unknown setting 'TargetVerison'"),
        ["Profile: typo in a node key (Servcie)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnknownKey", ErrorCategory.InvalidData, Swap("Service     =", "Servcie     ="), Says: "Nodes[0].Servcie"),
        ["Profile: Archive.Sha256 malformed"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Set("Sha256", "'abc123'"), Says: "Archive.Sha256"),
        ["Profile: Archive.Path does not exist"] = new("Invoke-BbRollingUpgrade", Run, "PreflightArchiveMissing", ErrorCategory.InvalidOperation,
            Set("Path  ", "'/nowhere/atlassian-bitbucket-8.19.4.tar.gz'"), Says: "does not exist"),
        ["Profile: negative timeout (StopSeconds = -5)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Timeouts("StopSeconds = -5"), Says: "Timeouts.StopSeconds"),
        ["Profile: zero timeout (StartSeconds = 0)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Timeouts("StartSeconds = 0"), Says: "Timeouts.StartSeconds"),
        ["Profile: unknown timeout (StopSecs)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnknownKey", ErrorCategory.InvalidData, Timeouts("StopSecs = 60"), Says: "Timeouts.StopSecs"),

        // ---- nodes and members that do not describe the cluster
        ["Profile: duplicate node names"] = new("Invoke-BbRollingUpgrade", Run, "ProfileDuplicate", ErrorCategory.InvalidData, Swap("Name        = 'node-3'", "Name        = 'node-2'"), Says: "Node 'node-2' is defined twice"),
        ["Profile: duplicate members"] = new("Invoke-BbRollingUpgrade", Run, "ProfileDuplicate", ErrorCategory.InvalidData, Swap("'bitbucket/node-3'", "'bitbucket/node-2'"), Says: "is also given for node node-2"),
        ["Profile: member names a load balancer that is not defined"] = new("Invoke-BbRollingUpgrade", Run, "ProfileUnknownLoadBalancer", ErrorCategory.InvalidData,
            Swap("Member      = 'bitbucket/node-2'", "Members     = @{ lb9 = 'bitbucket/node-2' }"), Says: "No load balancer named 'lb9'"),
        ["Profile: node without a member"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidNode", ErrorCategory.InvalidData,
            Swap("            Member      = 'bitbucket/node-2'\n", ""), Says: "could not be taken out of rotation"),
        ["Profile: Remoting is not a node target"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidRemoting", ErrorCategory.InvalidData,
            Swap("'node-2.example.com'", "'ssh://admin@node-2.example.com:99999'"), Says: "Nodes[1].Remoting"),
        ["Profile: node Url is not http(s)"] = new("Invoke-BbRollingUpgrade", Run, "ProfileInvalidValue", ErrorCategory.InvalidData, Swap("'http://10.0.0.1:7990/'", "'10.0.0.1:7990'"), Says: "Nodes[0].Url"),
        ["Profile: a node the cluster does not have"] = new("Invoke-BbRollingUpgrade", Run, "PreflightNodeNotInCluster", ErrorCategory.InvalidOperation,
            World: w => w.Nodes.RemoveAll(n => n.Name == "node-3"), Says: "knows no node 'node-3'"),
        ["Profile: a cluster node missing from the profile"] = new("Invoke-BbRollingUpgrade", Run, "PreflightNodeNotInProfile", ErrorCategory.InvalidOperation,
            World: w => w.Nodes.Add(new FakeNode { Name = "node-4", Ip = "10.0.0.4", InstalledVersion = From, StartedAt = TimeSpan.FromHours(-1) }), Says: "node-4"),
        ["Profile: member not in the load balancer"] = new("Invoke-BbRollingUpgrade", Run, "PreflightMemberNotFound", ErrorCategory.InvalidOperation,
            World: w => w["node-2"].MemberFound = false, Says: "Nodes[1].Member"),

        // ---- versions the cluster cannot roll to
        ["Profile: downgrade (8.19.3 -> 8.19.2)"] = new("Invoke-BbRollingUpgrade", Run, "PreflightDowngrade", ErrorCategory.InvalidOperation, Set("TargetVersion", "'8.19.2'")),
        ["Profile: same version (8.19.3 -> 8.19.3)"] = new("Invoke-BbRollingUpgrade", Run, "PreflightAlreadyOnTarget", ErrorCategory.InvalidOperation, Set("TargetVersion", "'8.19.3'"), Says: "already runs 8.19.3"),
        ["Profile: feature jump (8.19.3 -> 8.20.0)"] = new("Invoke-BbRollingUpgrade", Run, "PreflightNotBugfixUpgrade", ErrorCategory.InvalidOperation, Set("TargetVersion", "'8.20.0'"), Says: "Feature and major upgrades need a full outage"),
        ["Profile: major jump (8.19.3 -> 9.0.0)"] = new("Invoke-BbRollingUpgrade", Run, "PreflightNotBugfixUpgrade", ErrorCategory.InvalidOperation, Set("TargetVersion", "'9.0.0'"), Says: "not on the 8.19 line"),

        // ---- Invoke-BbNodeUpgrade and Invoke-BbRollingUpgrade parameters
        ["Invoke-BbNodeUpgrade: unknown node"] = new("Invoke-BbNodeUpgrade", NodeUpgrade + " -Name node-9", "ProfileUnknownNode", ErrorCategory.ObjectNotFound, Says: "node-1, node-2, node-3"),
        ["Invoke-BbNodeUpgrade: upgrade mode is off"] = new("Invoke-BbNodeUpgrade", NodeUpgrade + " -Name node-2", "UpgradeModeOff", ErrorCategory.InvalidOperation, Says: "Enable upgrade mode first"),
        ["Invoke-BbNodeUpgrade: feature jump (8.20.0)"] = new("Invoke-BbNodeUpgrade", NodeUpgrade + " -Name node-2", "PreflightNotBugfixUpgrade", ErrorCategory.InvalidOperation,
            Set("TargetVersion", "'8.20.0'"), w => w.StartUpgradeMode(), "not on the 8.19 line"),
        ["Invoke-BbRollingUpgrade: unknown hook phase"] = new("Invoke-BbRollingUpgrade", Run + " -Hook @{ AfterLunch = { } }", "UpgradeInvalidHook", ErrorCategory.InvalidArgument, Says: "AfterLunch"),

        // ---- New-BbClusterProfile
        ["New-BbClusterProfile: file exists"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p", "NewBbClusterProfileExists", ErrorCategory.ResourceExists, Says: "-Force"),
        ["New-BbClusterProfile: path is a folder"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $dir -Force", "NewBbClusterProfileIsDirectory", ErrorCategory.InvalidArgument, Says: "is a folder"),
        ["New-BbClusterProfile: malformed TargetVersion"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p -Force -TargetVersion 8.19", "NewBbClusterProfileInvalidVersion", ErrorCategory.InvalidArgument, Says: "major.minor.bugfix"),
        ["New-BbClusterProfile: duplicate node names"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p -Force -NodeName node-1, node-2, NODE-1", "NewBbClusterProfileDuplicateNode", ErrorCategory.InvalidArgument, Says: "2 times"),
        ["New-BbClusterProfile: BaseUrl not http(s)"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p -Force -BaseUrl ftp://bitbucket.example.com", "NewBbClusterProfileInvalidUri", ErrorCategory.InvalidArgument),
        ["New-BbClusterProfile: one node only"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p -Force -NodeName node-1", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["New-BbClusterProfile: malformed checksum"] = new("New-BbClusterProfile", "New-BbClusterProfile -Path $p -Force -ArchiveSha256 abc123", "ParameterArgumentValidationError", ErrorCategory.InvalidData),

        // ---- node cmdlets (refused before they connect to the node)
        ["Stop-BbNode: timeout 0 s"] = new("Stop-BbNode", $"Stop-BbNode {Remote} -TimeoutSec 0 -Confirm:$false", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Copy-BbDistribution: archive that does not exist"] = new("Copy-BbDistribution", $"Copy-BbDistribution {Remote} -Path (Join-Path $dir atlassian-bitbucket-8.19.4.tar.gz) -Confirm:$false", "CopyBbDistributionArchiveNotFound", ErrorCategory.ObjectNotFound),
        ["Copy-BbDistribution: both -Path and -Uri"] = new("Copy-BbDistribution", $"Copy-BbDistribution {Remote} -Path $a -Uri https://example.com/atlassian-bitbucket-8.19.4.tar.gz -Confirm:$false", "CopyBbDistributionSourceMissing", ErrorCategory.InvalidArgument),
        ["Copy-BbDistribution: ftp URL"] = new("Copy-BbDistribution", $"Copy-BbDistribution {Remote} -Uri ftp://example.com/atlassian-bitbucket-8.19.4.tar.gz -Confirm:$false", "CopyBbDistributionInvalidUri", ErrorCategory.InvalidArgument),
        ["Copy-BbDistribution: malformed checksum"] = new("Copy-BbDistribution", $"Copy-BbDistribution {Remote} -Path $a -Sha256 xyz -Confirm:$false", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
    };

    public static IEnumerable<object[]> CaseNames => Cases.Keys.Select(k => new object[] { k });

    [Fact]
    public void There_are_at_least_twenty_profile_and_node_cases() => Assert.True(Cases.Count >= 20, $"{Cases.Count} cases");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Bad_input_is_refused_with_a_stable_error_before_anything_changes(string name)
    {
        var c = Cases[name];
        var dir = Path.Combine(_f.Directory, "work");
        Directory.CreateDirectory(dir);
        if (c.Edit is not null) File.WriteAllText(_profile, c.Edit(_template).Replace("<work>", dir));
        c.World?.Invoke(_f.World);
        _f.World.Operations.Clear(); // what the arrangement did is not the case's doing
        var profileBefore = File.ReadAllText(_profile);
        var upgradeModeBefore = _f.World.UpgradeMode;

        var r = _ps.Run(c.Script, new Dictionary<string, object?>
        {
            ["p"] = _profile,
            ["a"] = _f.ArchivePath,
            ["j"] = _f.Journal.Directory,
            ["dir"] = dir,
            ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
        });

        var untouched = _f.World.Operations.Count == 0 && _f.World.UpgradeMode == upgradeModeBefore
            && _f.World.Nodes.All(n => n.Running && n.InstalledVersion == From && n.Rotation == RotationState.InRotation)
            && !File.Exists(_f.Journal.JournalFile("prod")) && !File.Exists(_f.Journal.LockFile("prod"))
            && File.ReadAllText(_profile) == profileBefore && Directory.GetFileSystemEntries(dir).Length == 0;
        _report.AssertRefused(name, c.Area, r, c.ErrorId, c.Category, c.Says, untouched);
        Assert.Empty(_f.World.Operations);
        Assert.Equal(upgradeModeBefore, _f.World.UpgradeMode);
        Assert.All(_f.World.Nodes, n => Assert.True(n.Running && n.InstalledVersion == From && n.Rotation == RotationState.InRotation, n.Name + " untouched"));
        Assert.False(File.Exists(_f.Journal.JournalFile("prod")), "no journal");
        Assert.False(File.Exists(_f.Journal.LockFile("prod")), "no lock left");
        Assert.Equal(profileBefore, File.ReadAllText(_profile));
        Assert.Empty(Directory.GetFileSystemEntries(dir)); // nothing written there, and a profile's code did not run
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _ps.Dispose();
        _f.Dispose();
    }
}
