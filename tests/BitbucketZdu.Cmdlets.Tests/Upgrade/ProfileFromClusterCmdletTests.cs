using System.Collections;
using System.Management.Automation;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>
/// New-BbClusterProfile -FromConnection and piped Get-BbNode: the nodes the cluster API reports (behind a context path,
/// with names the plugin leaves "Not configured") become entries Test-BbClusterProfile reads without an issue.
/// </summary>
public sealed class ProfileFromClusterCmdletTests : IDisposable
{
    // Two named nodes, two whose names are the plugin's default, one of them without portNumber (as the plugin writes it).
    private const string Cluster = """
        {"upgradeModeEnabled":false,"state":"STABLE","originalVersion":null,"nodes":[
          {"id":"11","name":"bb-east","ipAddress":"10.1.0.11","portNumber":5701,"state":"ACTIVE","version":"8.19.3","links":[]},
          {"id":"12","name":"bb-west","ipAddress":"10.1.0.12","portNumber":5701,"state":"ACTIVE","version":"8.19.3","links":[]},
          {"id":"13","name":"Not configured","ipAddress":"10.1.0.13","portNumber":5701,"state":"ACTIVE","version":"8.19.3","links":[]},
          {"id":"14","name":"Not configured","ipAddress":"10.1.0.14","state":"ACTIVE","version":"8.19.3","links":[]}],
         "links":[{"rel":"self","href":"/"},{"rel":"start","href":"/start"}]}
        """;

    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly PowerShellHost _ps = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-fromcluster-").FullName;
    private readonly string _archive;

    public ProfileFromClusterCmdletTests()
    {
        _archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.tar.gz");
        File.WriteAllText(_archive, "not really an archive");
    }

    private void Answer(string body) =>
        _server.Given(Request.Create().WithPath("/bitbucket/rest/zdu/cluster").UsingGet())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody(body));

    private Dictionary<string, object?> Vars() => new()
    {
        ["uri"] = _server.Url + "/bitbucket",
        ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
        ["p"] = Path.Combine(_dir, "cluster.psd1"),
        ["a"] = _archive,
        ["s"] = PreflightCheck.Sha256Of(_archive),
    };

    private static List<Hashtable> Nodes(PSObject data) =>
        ((IEnumerable)((Hashtable)data.BaseObject)["Nodes"]!).Cast<object>().Select(o => (Hashtable)(o is PSObject p ? p.BaseObject : o)).ToList();

    [Theory]
    [InlineData("New-BbClusterProfile -Path $p -FromConnection -ArchivePath $a -ArchiveSha256 $s")]
    [InlineData("Get-BbNode | New-BbClusterProfile -Path $p -BaseUrl $uri -ArchivePath $a -ArchiveSha256 $s")]
    public void The_connected_cluster_fills_a_profile_that_Test_BbClusterProfile_reads(string write)
    {
        Answer(Cluster);
        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred; " + write + " | Out-Null; "
            + "Test-BbClusterProfile -ProfilePath $p -SkipProbe; Import-PowerShellDataFile $p", Vars());

        Assert.Null(r.FirstError);
        var findings = r.Output.Where(o => o.BaseObject is PreflightFinding).Select(o => (PreflightFinding)o.BaseObject).ToList();
        Assert.DoesNotContain(findings, f => f.Severity == FindingSeverity.Error);
        Assert.Contains(findings, f => f.Check == "ProfileValid");

        var data = r.Output.Last();
        Assert.Equal(_server.Url + "/bitbucket", ((Hashtable)data.BaseObject)["BaseUrl"]!.ToString()!.TrimEnd('/'));
        var nodes = Nodes(data);
        Assert.Equal(new[] { "bb-east", "bb-west", "node-10-1-0-13-5701", "node-10-1-0-14" }, nodes.Select(n => (string)n["Name"]!));
        // Named nodes match by name; the unnamed ones carry the address the API matches them by.
        Assert.False(nodes[0].ContainsKey("ApiAddress"));
        Assert.Equal("10.1.0.13:5701", nodes[2]["ApiAddress"]);
        Assert.Equal("10.1.0.14", nodes[3]["ApiAddress"]);
        // Each node's own URL: its address, Bitbucket's default HTTP port, the cluster's context path.
        Assert.Equal("http://10.1.0.11:7990/bitbucket/", nodes[0]["Url"]);
        Assert.Equal("http://10.1.0.14:7990/bitbucket/", nodes[3]["Url"]);
        Assert.Equal("10.1.0.12", nodes[1]["Remoting"]);
        Assert.Equal("bitbucket/bb-west", nodes[1]["Member"]);

        var text = File.ReadAllText(Path.Combine(_dir, "cluster.psd1"));
        Assert.DoesNotContain("10.0.0.", text);
        Assert.Contains("id 13, address 10.1.0.13:5701", text);
        Assert.Contains("The nodes run 8.19.3 now.", text);
        Canary.AssertAbsent(text + r.AllText, "the profile and the streams");
    }

    [Fact]
    public void Unnamed_nodes_on_one_address_still_get_one_entry_each()
    {
        Answer("""
            {"upgradeModeEnabled":false,"state":"STABLE","nodes":[
              {"id":"1","name":"Not configured","ipAddress":"127.0.0.1","state":"ACTIVE","version":"8.19.3"},
              {"id":"2","name":"Not configured","ipAddress":"127.0.0.1","state":"ACTIVE","version":"8.19.3"}],"links":[]}
            """);
        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred; New-BbClusterProfile -Path $p -FromConnection -ArchivePath $a -ArchiveSha256 $s | Out-Null; "
            + "Test-BbClusterProfile -ProfilePath $p -SkipProbe -Quiet; Import-PowerShellDataFile $p", Vars());

        Assert.Null(r.FirstError);
        Assert.True((bool)r.Output[0].BaseObject);
        Assert.Equal(new[] { "node-127-0-0-1", "node-127-0-0-1-2" }, Nodes(r.Output[1]).Select(n => (string)n["Name"]!));
    }

    [Fact]
    public void A_cluster_of_one_node_is_refused_and_nothing_is_written()
    {
        Answer("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":[{"id":"1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"}],"links":[]}""");
        var r = _ps.Run("Connect-BbCluster -Uri $uri -Credential $cred; New-BbClusterProfile -Path $p -FromConnection", Vars());

        Assert.Equal("NewBbClusterProfileTooFewNodes", r.FirstError!.FullyQualifiedErrorId.Split(',')[0]);
        Assert.Contains("1 node(s)", r.FirstError.Exception.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "cluster.psd1")));
    }

    [Fact]
    public void FromConnection_without_a_connection_says_how_to_connect()
    {
        var r = _ps.Run("New-BbClusterProfile -Path $p -FromConnection", Vars());
        Assert.Equal("BbNotConnected", r.FirstError!.FullyQualifiedErrorId.Split(',')[0]);
        Assert.False(File.Exists(Path.Combine(_dir, "cluster.psd1")));
    }

    public void Dispose()
    {
        _ps.Dispose();
        _server.Stop();
        Directory.Delete(_dir, recursive: true);
    }
}
