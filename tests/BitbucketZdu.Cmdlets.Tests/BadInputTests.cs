using System.Collections.Concurrent;
using System.Management.Automation;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Models;
using BitbucketZdu.TestSupport;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>
/// Collects the outcome of every bad-input case and writes it to out/reliability/bad-input.json when the class is
/// done, for tools/New-ReliabilityReport.ps1 (docs/reliability.md). Several classes feed the suite: rows are merged
/// by case into the file (build.ps1 Test empties out/reliability first), so no class clobbers another's rows.
/// </summary>
public sealed class BadInputReport : IDisposable
{
    private static readonly object FileGate = new();
    private readonly ConcurrentDictionary<string, Row> _results = new();

    public sealed record Row(string Case, string Area, string Outcome, string? ErrorId, string? Category, string? Message);

    public void Record(string name, string area, string outcome, string? errorId, string? category, string? message) =>
        _results[name] = new Row(name, area, outcome, errorId, category, message);

    /// <summary>
    /// Records a case and asserts the refusal every bad-input suite shares: an error record with the expected ErrorId
    /// and category, a bounded message (containing <paramref name="says"/>), no output, no canary secret anywhere.
    /// <paramref name="unchanged"/> is the suite's own proof that nothing changed; the suite asserts its details.
    /// </summary>
    public void AssertRefused(string name, string area, PowerShellHost.Result r, string errorId, ErrorCategory category, string? says, bool unchanged)
    {
        var error = r.FirstError;
        var id = error?.FullyQualifiedErrorId.Split(',')[0];
        var message = error?.Exception?.Message.Split('\n')[0].Trim();
        var refused = error is not null && id == errorId && error.CategoryInfo.Category == category && !string.IsNullOrWhiteSpace(message)
            && unchanged && r.Output.Count == 0;
        Record(name, area, refused ? "refused" : "NOT refused", id, error?.CategoryInfo.Category.ToString(), BadInputTests.Redact(message));

        Canary.AssertAbsent(r.AllText + error?.TargetObject + error?.CategoryInfo.TargetName + error?.ErrorDetails, "the PowerShell streams and error records");
        Assert.True(error is not null, $"{name}: no error; output: {string.Join(", ", r.Output)}");
        Assert.Equal(errorId, id);
        Assert.Equal(category, error!.CategoryInfo.Category);
        Assert.False(string.IsNullOrWhiteSpace(message));
        if (says is not null) Assert.Contains(says, error.Exception.Message);
        Assert.True(message!.Length < 2000, "the message is bounded: " + message.Length);
        Assert.Empty(r.Output);
    }

    public void Dispose()
    {
        if (_results.IsEmpty) return;
        var path = Path.Combine(RepoRoot.Out, "reliability", "bad-input.json");
        lock (FileGate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var rows = new Dictionary<string, Row>(StringComparer.Ordinal);
            try
            {
                if (File.Exists(path))
                {
                    using var existing = JsonDocument.Parse(File.ReadAllText(path));
                    if (existing.RootElement.TryGetProperty("Cases", out var cases))
                        foreach (var row in cases.Deserialize<List<Row>>() ?? new()) rows[row.Case] = row;
                }
            }
            catch (JsonException)
            {
            }
            foreach (var row in _results.Values) rows[row.Case] = row;
            var doc = new { Suite = "Bad input", Generated = DateTime.UtcNow.ToString("u"), Cases = rows.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => rows[k]) };
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            File.Move(tmp, path, overwrite: true);
        }
    }
}

/// <summary>The repository's out/ folder, found from the test binaries.</summary>
public static class RepoRoot
{
    public static string Out
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "BitbucketZdu.sln"))) return Path.Combine(dir.FullName, "out");
            return Path.Combine(Path.GetTempPath(), "bbzdu-out");
        }
    }
}

/// <summary>
/// Bad input, table-driven: each case must end in an error record with a stable ErrorId and category and a message,
/// BEFORE anything changes: no POST reaches the (WireMock) rolling-upgrade API and the real HAProxy's
/// <c>show servers state</c> is the same after the case as before. No canary secret may show on any stream.
/// </summary>
public sealed class BadInputTests : IClassFixture<BadInputReport>, IClassFixture<LoadBalancerCmdletFixture>, IAsyncLifetime, IDisposable
{
    private const string Cmdlets = "BitbucketZdu.Cmdlets.";
    private readonly BadInputReport _report;
    private readonly LoadBalancerCmdletFixture _lb;
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly PowerShellHost _ps = new();
    private readonly BbConnection _connection;

    public BadInputTests(BadInputReport report, LoadBalancerCmdletFixture lb)
    {
        _report = report;
        _lb = lb;
        var options = Options(_server.Url!);
        options.RequestTimeout = TimeSpan.FromSeconds(10);
        options.RetryDeadline = TimeSpan.FromSeconds(20);
        _connection = new BbConnection(new ZduClient(options), options);
    }

    public Task InitializeAsync() => _lb.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    public sealed record Case(string Area, string Script, string ErrorId, ErrorCategory Category, Action<WireMockServer>? Arrange = null, string? Says = null);

    private static IResponseBuilder Body(string body, string type = "application/json", int status = 200) =>
        Response.Create().WithStatusCode(status).WithHeader("Content-Type", type).WithBody(body);

    private static Action<WireMockServer> Cluster(string body, string type = "application/json", int status = 200) =>
        s => s.Answer("GET", "/rest/zdu/cluster", Body(body, type, status));

    private const string Html = "<!DOCTYPE html><html><head><title>Log in - Okta</title></head><body><form action=\"/login\"></form></body></html>";
    private const string JiraServerInfo = """{"baseUrl":"https://jira.example.com","version":"9.12.2","versionNumbers":[9,12,2],"deploymentType":"Server","buildNumber":9120002,"serverTitle":"Jira"}""";
    private const string DuplicateNodes = """{"upgradeModeEnabled":false,"state":"STABLE","nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","state":"ACTIVE","version":"8.19.3"},{"id":"a1","name":"node-2","ipAddress":"10.0.0.2","state":"ACTIVE","version":"8.19.3"}],"links":[{"rel":"self","href":"/"},{"rel":"start","href":"/start"}]}""";
    private const string Azure = "-Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g -Backend pool";
    private const string Lb = "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend bitbucket; ";

    /// <summary>Every case: name → what runs, what must be refused and how.</summary>
    public static readonly IReadOnlyDictionary<string, Case> Cases = new Dictionary<string, Case>
    {
        // ---- Connect-BbCluster: URLs, files, timeouts (nothing is contacted)
        ["Connect: ftp URL"] = new("Connect-BbCluster", "Connect-BbCluster -Uri 'ftp://bitbucket.example.com' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument, Says: "not an http or https URL"),
        ["Connect: relative URL"] = new("Connect-BbCluster", "Connect-BbCluster -Uri 'bitbucket/rest' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument),
        ["Connect: URL with a query"] = new("Connect-BbCluster", "Connect-BbCluster -Uri 'https://bb.example.com/?os_authType=basic' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument, Says: "query or fragment"),
        ["Connect: URL with a fragment"] = new("Connect-BbCluster", "Connect-BbCluster -Uri 'https://bb.example.com/#admin' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument),
        ["Connect: password in the URL"] = new("Connect-BbCluster", $"Connect-BbCluster -Uri 'https://admin:{Canary.Password}@bb.example.com/' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument, Says: "-Credential"),
        ["Connect: empty URL"] = new("Connect-BbCluster", "Connect-BbCluster -Uri '' -Credential $cred", "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument),
        ["Connect: timeout 0 s"] = new("Connect-BbCluster", "Connect-BbCluster -Uri $uri -Credential $cred -TimeoutSec 0", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Connect: timeout of 2 days"] = new("Connect-BbCluster", "Connect-BbCluster -Uri $uri -Credential $cred -TimeoutSec 172800", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Connect: missing CA file"] = new("Connect-BbCluster", "Connect-BbCluster -Uri $uri -Credential $cred -TrustedCertificatePath (Join-Path (Split-Path $garbage) no-such-ca.pem)", "ConnectBbClusterInvalidCertificate", ErrorCategory.InvalidArgument, Says: "does not exist"),
        ["Connect: CA file that is no certificate"] = new("Connect-BbCluster", "Set-Content -LiteralPath $garbage -Value \"-----BEGIN CERTIFICATE-----`nnot base64!`n-----END CERTIFICATE-----\"; Connect-BbCluster -Uri $uri -Credential $cred -TrustedCertificatePath $garbage", "ConnectBbClusterInvalidCertificate", ErrorCategory.InvalidArgument, Says: "not a certificate file"),
        ["Connect: nothing listens"] = new("Connect-BbCluster", "Connect-BbCluster -Uri \"http://127.0.0.1:$closed\" -Credential $cred -TimeoutSec 2", "ZduUnreachable", ErrorCategory.ConnectionError),

        // ---- a server that is not Bitbucket, or a Bitbucket answer that is malformed
        ["Server: HTML login page (200)"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(Html, "text/html"), "HTML page"),
        ["Server: JSON of another product (Jira serverInfo)"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(JiraServerInfo), "not a rolling-upgrade cluster"),
        ["Server: Jira-style error document (200)"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"errorMessages":["Site temporarily unavailable"],"errors":{}}""")),
        ["Server: XML answer"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("<status><state>STABLE</state></status>", "application/xml")),
        ["Server: empty 200 answer"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("")),
        ["Server: array instead of object"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""[{"state":"STABLE","nodes":[]}]"""), "Array"),
        ["Server: truncated JSON"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(Stable[..(Stable.Length / 2)])),
        ["Server: JSON string literal"] = new("REST client", "Get-BbClusterStatus", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("\"STABLE\"")),
        ["Server: state is a number"] = new("REST client", "Get-BbClusterStatus", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":false,"state":42,"nodes":[],"links":[]}"""), "'state' is Number"),
        ["Server: nodes is a string"] = new("REST client", "Get-BbNode", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":"node-1,node-2","links":[]}"""), "'nodes'"),
        ["Server: upgradeModeEnabled is a string"] = new("REST client", "Enable-BbUpgradeMode -Confirm:$false", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":"maybe","state":"STABLE","nodes":[],"links":[]}"""), "upgradeModeEnabled"),
        ["Server: a node is an array"] = new("REST client", "Get-BbNode", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":[["a1","node-1"]],"links":[]}""")),
        ["Server: node without an id"] = new("REST client", "Get-BbNode", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":[{"name":"node-1","state":"ACTIVE"}],"links":[]}"""), "no 'id'"),
        ["Server: node port is text"] = new("REST client", "Get-BbNode", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster("""{"upgradeModeEnabled":false,"state":"STABLE","nodes":[{"id":"a1","name":"node-1","portNumber":"http","state":"ACTIVE"}],"links":[]}"""), "portNumber"),
        ["Server: duplicate node ids (Get-BbNode)"] = new("REST client", "Get-BbNode", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(DuplicateNodes), "times in 'nodes' on rows that are not OFFLINE"),
        ["Server: duplicate node ids (Enable-BbUpgradeMode)"] = new("Enable-BbUpgradeMode", "Enable-BbUpgradeMode -Confirm:$false", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(DuplicateNodes), "times in 'nodes' on rows that are not OFFLINE"),
        ["Server: oversized answer (5 MiB)"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduResponseTooLarge", ErrorCategory.InvalidResult, Cluster("{\"state\":\"STABLE\",\"pad\":\"" + new string('x', 5 * 1024 * 1024) + "\"}"), "at most"),
        ["Server: oversized error page (5 MiB, 500)"] = new("REST client", "Get-BbClusterStatus", "ZduResponseTooLarge", ErrorCategory.InvalidResult, Cluster(new string('e', 5 * 1024 * 1024), "text/plain", 500)),
        ["Server: redirect to a login page"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduRedirected", ErrorCategory.InvalidResult,
            s => s.Answer("GET", "/rest/zdu/cluster", Response.Create().WithStatusCode(302).WithHeader("Location", "https://sso.example.com/login?state=abc"))),
        ["Server: no rolling-upgrade API (404)"] = new("REST client", "Connect-BbCluster -Uri $uri -Credential $cred", "ZduNotFound", ErrorCategory.ObjectNotFound, Cluster("<html><body>Not Found</body></html>", "text/html", 404)),

        // ---- nodes
        ["Get-BbNode: unknown id"] = new("Get-BbNode", "Get-BbNode -Id zz99", "ZduNotFound", ErrorCategory.ObjectNotFound,
            s => s.Answer("GET", "/rest/zdu/nodes/zz99", Body("""{"errors":[{"message":"No node with id zz99"}]}""", status: 404)), "zz99"),
        ["Get-BbNode: unknown name"] = new("Get-BbNode", "Get-BbNode -Name node-9", "GetBbNodeNotFound", ErrorCategory.ObjectNotFound, Cluster(Stable), "node-1, node-2"),
        ["Get-BbNode: empty id"] = new("Get-BbNode", "Get-BbNode -Id ''", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Get-BbNode: unknown state"] = new("Get-BbNode", "Get-BbNode -State SLEEPING", "GetBbNodeInvalidState", ErrorCategory.InvalidArgument, Says: "Use one of: Unknown, STARTING, ACTIVE"),
        ["Wait-BbNodeState: no node named"] = new("Wait-BbNodeState", "Wait-BbNodeState -State ACTIVE -TimeoutSec 2", "WaitBbNodeStateNoNode", ErrorCategory.InvalidArgument, Cluster(Stable)),
        ["Wait-BbNodeState: timeout 0 s"] = new("Wait-BbNodeState", "Wait-BbNodeState -Name node-1 -State ACTIVE -TimeoutSec 0", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Wait-BbNodeState: unknown state"] = new("Wait-BbNodeState", "Wait-BbNodeState -Name node-1 -State SLEEPING", "WaitBbNodeStateInvalidState", ErrorCategory.InvalidArgument, Says: "Use one of: STARTING, ACTIVE"),
        ["Wait-BbNodeState: Unknown as a target"] = new("Wait-BbNodeState", "Wait-BbNodeState -Name node-1 -State ACTIVE, unknown -TimeoutSec 2", "WaitBbNodeStateUnknownState", ErrorCategory.InvalidArgument, Cluster(Stable), "cannot be waited for"),
        ["Wait-BbNodeState: poll interval 0 s"] = new("Wait-BbNodeState", "Wait-BbNodeState -Name node-1 -State ACTIVE -PollIntervalSec 0", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Wait-BbClusterState: negative timeout"] = new("Wait-BbClusterState", "Wait-BbClusterState -State STABLE -TimeoutSec -5", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Wait-BbClusterState: unknown state"] = new("Wait-BbClusterState", "Wait-BbClusterState -State UPGRADING", "WaitBbClusterStateInvalidState", ErrorCategory.InvalidArgument, Says: "Use one of: STABLE, READY_TO_UPGRADE"),
        ["Wait-BbClusterState: Unknown as a target"] = new("Wait-BbClusterState", "Wait-BbClusterState -State Unknown -TimeoutSec 2", "WaitBbClusterStateUnknownState", ErrorCategory.InvalidArgument, Cluster(Stable), "cannot be waited for"),
        ["Wait-BbClusterState: a state number"] = new("Wait-BbClusterState", "Wait-BbClusterState -State 1 -TimeoutSec 2", "WaitBbClusterStateInvalidState", ErrorCategory.InvalidArgument, Cluster(Stable), "'1' is not a cluster state"),

        // ---- state-changing cmdlets refused before the POST
        ["Complete-BbRollingUpgrade: cluster STABLE"] = new("Complete-BbRollingUpgrade", "Complete-BbRollingUpgrade -Confirm:$false", "CompleteBbRollingUpgradeInvalidState", ErrorCategory.InvalidOperation, Cluster(Stable)),
        ["Complete-BbRollingUpgrade: nodes on mixed versions"] = new("Complete-BbRollingUpgrade", "Complete-BbRollingUpgrade -Confirm:$false", "CompleteBbRollingUpgradeInvalidState", ErrorCategory.InvalidOperation, Cluster(Mixed)),
        ["Disable-BbUpgradeMode: upgrade mode is off"] = new("Disable-BbUpgradeMode", "Disable-BbUpgradeMode -Confirm:$false", "DisableBbUpgradeModeInvalidState", ErrorCategory.InvalidOperation, Cluster(Stable)),
        ["Enable-BbUpgradeMode: HTML instead of the cluster"] = new("Enable-BbUpgradeMode", "Enable-BbUpgradeMode -Confirm:$false", "ZduUnexpectedResponse", ErrorCategory.InvalidResult, Cluster(Html, "text/html")),
        ["Enable-BbUpgradeMode: not connected"] = new("Enable-BbUpgradeMode", "$PSDefaultParameterValues.Clear(); Enable-BbUpgradeMode -Confirm:$false", "BbNotConnected", ErrorCategory.ConnectionError),

        // ---- load balancers: kinds, endpoints, backends, members, member maps (real HAProxy must stay unchanged)
        ["New-BbLoadBalancer: unknown kind"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind Citrix -Endpoint $sock -Backend bitbucket", "CannotConvertArgumentNoMessage", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: NGINX with two endpoints"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind Nginx -Endpoint /etc/nginx/a.conf, /etc/nginx/b.conf -Backend bitbucket", "NewBbLoadBalancerInvalidEndpoint", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: HAProxy endpoint is a URL"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind HAProxy -Endpoint http://127.0.0.1:9000/stats -Backend bitbucket", "HAProxyInvalidEndpoint", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: empty backend"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend ''", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["New-BbLoadBalancer: Apache endpoint not http"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind Apache -Endpoint ftp://lb/balancer-manager -Backend bitbucket", "ApacheInvalidEndpoint", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: NGINX Plus endpoint not a URL"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind NginxPlus -Endpoint lb:8080 -Backend bitbucket", "NginxPlusInvalidEndpoint", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: Azure id is not a gateway"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r -Backend pool -AzureAuthentication Token -AzureToken $token", "AzureInvalidGatewayId", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: -MatchBy Map without a map"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend bitbucket -MatchBy Map", "NewBbLoadBalancerMissingMap", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: Azure service principal missing"] = new("New-BbLoadBalancer", $"New-BbLoadBalancer {Azure} -AzureAuthentication ServicePrincipal", "NewBbLoadBalancerMissingServicePrincipal", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: Azure token missing"] = new("New-BbLoadBalancer", $"New-BbLoadBalancer {Azure} -AzureAuthentication Token", "NewBbLoadBalancerMissingToken", ErrorCategory.InvalidArgument),
        ["New-BbLoadBalancer: timeout 0 s"] = new("New-BbLoadBalancer", "New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend bitbucket -TimeoutSec 0", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Get-BbLoadBalancerMember: unknown backend"] = new("Get-BbLoadBalancerMember", "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend no-such-backend; Get-BbLoadBalancerMember -LoadBalancer $lb", "LoadBalancerBackendNotFound", ErrorCategory.ObjectNotFound),
        ["Get-BbLoadBalancerMember: socket that does not exist"] = new("Get-BbLoadBalancerMember", "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $missingSock -Backend bitbucket; Get-BbLoadBalancerMember -LoadBalancer $lb", "LoadBalancerUnreachable", ErrorCategory.ConnectionError),
        ["Remove-BbNodeFromLoadBalancer: unknown member"] = new("Remove-BbNodeFromLoadBalancer", Lb + "Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Member node-9 -Confirm:$false", "LoadBalancerMemberNotFound", ErrorCategory.ObjectNotFound),
        ["Remove-BbNodeFromLoadBalancer: node not in the pool"] = new("Remove-BbNodeFromLoadBalancer", Lb + "Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name bb-7 -Confirm:$false", "LoadBalancerMemberNotFound", ErrorCategory.ObjectNotFound),
        ["Remove-BbNodeFromLoadBalancer: member map points nowhere"] = new("Remove-BbNodeFromLoadBalancer", "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend bitbucket -MatchBy Map -MemberMap @{ 'node-1' = 'ghost-1' }; Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name node-1 -Confirm:$false", "LoadBalancerMemberNotFound", ErrorCategory.ObjectNotFound),
        ["Remove-BbNodeFromLoadBalancer: node missing from the member map"] = new("Remove-BbNodeFromLoadBalancer", "$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $sock -Backend bitbucket -MatchBy Map -MemberMap @{ 'node-1' = 'node-1' }; Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Name node-2 -Confirm:$false", "LoadBalancerMemberNotFound", ErrorCategory.ObjectNotFound),
        ["Remove-BbNodeFromLoadBalancer: empty member"] = new("Remove-BbNodeFromLoadBalancer", Lb + "Remove-BbNodeFromLoadBalancer -LoadBalancer $lb -Member '' -Confirm:$false", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
        ["Add-BbNodeToLoadBalancer: unknown member"] = new("Add-BbNodeToLoadBalancer", Lb + "Add-BbNodeToLoadBalancer -LoadBalancer $lb -Member node-9 -Confirm:$false", "LoadBalancerMemberNotFound", ErrorCategory.ObjectNotFound),
        ["Add-BbNodeToLoadBalancer: no load balancer given"] = new("Add-BbNodeToLoadBalancer", "Add-BbNodeToLoadBalancer -LoadBalancer $null -Member node-1", "ParameterArgumentValidationError", ErrorCategory.InvalidData),
    };

    public static IEnumerable<object[]> CaseNames => Cases.Keys.Select(k => new object[] { k });

    [Fact]
    public void There_are_at_least_forty_cases() => Assert.True(Cases.Count >= 40, $"{Cases.Count} cases");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Bad_input_is_refused_with_a_stable_error_before_anything_changes(string name)
    {
        var c = Cases[name];
        c.Arrange?.Invoke(_server);
        var lbBefore = ServersState();
        var dir = Directory.CreateTempSubdirectory("bbzdu-bad-").FullName;
        PowerShellHost.Result r;
        try
        {
            r = _ps.Run("$PSDefaultParameterValues['*-Bb*:Connection'] = $conn\n" + c.Script, new Dictionary<string, object?>
            {
                ["conn"] = _connection,
                ["uri"] = _server.Url,
                ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
                ["token"] = Canary.Secure(Canary.Token),
                ["sock"] = "unix://" + _lb.AdminSocket,
                ["missingSock"] = "unix://" + Path.Combine(dir, "none.sock"),
                ["garbage"] = Path.Combine(dir, "garbage.pem"),
                ["closed"] = FreePort.Next(),
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        var posts = _server.LogEntries.Count(e => e.RequestMessage!.Method != "GET");
        var lbAfter = ServersState();
        _report.AssertRefused(name, c.Area, r, c.ErrorId, c.Category, c.Says, posts == 0 && lbAfter == lbBefore);
        Assert.Equal(0, posts);
        Assert.Equal(lbBefore, lbAfter);
    }

    /// <summary>The loopback ports of this run are noise in the committed report.</summary>
    internal static string? Redact(string? message) =>
        message is null ? null : System.Text.RegularExpressions.Regex.Replace(message, @"(127\.0\.0\.1|localhost):\d+", "$1:<port>")
            .Replace(Path.GetTempPath().TrimEnd('/'), "<tmp>")
            .Replace("/tmp/", "<tmp>/") is var m2 ? System.Text.RegularExpressions.Regex.Replace(m2, "bbzdu-(lbc|bad|upg)-[0-9a-zA-Z]+", "bbzdu-$1-<id>") : null;

    /// <summary>HAProxy's own view of the backend (name, address, operational and admin state, weight), from its admin socket.</summary>
    private string ServersState()
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(_lb.AdminSocket));
        socket.Send(Encoding.ASCII.GetBytes("show servers state bitbucket\n"));
        using var reader = new StreamReader(new NetworkStream(socket, ownsSocket: false));
        var lines = reader.ReadToEnd().Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains("bitbucket"))
            .Select(l => string.Join(' ', l.Split(' ').Skip(1).Take(7).Where((_, i) => i != 1)));
        var text = string.Join("\n", lines);
        Assert.Contains("node-1", text);
        return text;
    }

    public void Dispose()
    {
        _ps.Dispose();
        _connection.Dispose();
        _server.Stop();
    }
}
