using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using BitbucketZdu.TestSupport;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>
/// Canary credentials through representative cmdlets, succeeding and failing (401, 403, 500, timeouts, redirects,
/// ambiguous POSTs, a server that echoes the Authorization header): not one stream may carry a canary, whether in
/// output objects (ToString and every property), error records (message, exception ToString, inner exceptions,
/// target, details), warning, verbose, debug, information or progress records, nor in formatted output.
/// </summary>
public sealed class SecretScanTests : IDisposable
{
    private readonly WireMockServer _server = WireMockServer.Start();
    private readonly Runspace _runspace;

    public SecretScanTests()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { typeof(BitbucketZdu.Cmdlets.ConnectBbClusterCommand).Assembly.Location });
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
    }

    /// <summary>Runs <paramref name="script"/> with every preference on and returns all it wrote on any stream, as text.</summary>
    private (string Text, int Errors) RunAll(string script)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        _runspace.SessionStateProxy.SetVariable("uri", _server.Url);
        _runspace.SessionStateProxy.SetVariable("cred", new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)));
        _runspace.SessionStateProxy.SetVariable("token", Canary.Secure(Canary.Token));
        ps.AddScript("$VerbosePreference = 'Continue'; $DebugPreference = 'Continue'; $InformationPreference = 'Continue'; $ProgressPreference = 'Continue'\n" + script);
        var text = new StringBuilder();
        var errors = 0;
        try
        {
            foreach (var o in ps.Invoke()) Dump(o, text, 0);
        }
        catch (RuntimeException ex)
        {
            errors++;
            Dump(ex.ErrorRecord, text, 0);
            text.AppendLine(ex.ToString());
        }
        foreach (var e in ps.Streams.Error) { errors++; Dump(e, text, 0); }
        foreach (var w in ps.Streams.Warning) text.AppendLine(w.ToString());
        foreach (var v in ps.Streams.Verbose) text.AppendLine(v.ToString());
        foreach (var d in ps.Streams.Debug) text.AppendLine(d.ToString());
        foreach (var i in ps.Streams.Information) { text.AppendLine(i.ToString()); Dump(i.MessageData, text, 0); }
        foreach (var p in ps.Streams.Progress) text.AppendLine($"{p.Activity} {p.StatusDescription} {p.CurrentOperation}");
        return (text.ToString(), errors);
    }

    /// <summary>Writes an object's text, its properties' values and, for errors, every part of the record and its exceptions.</summary>
    private static void Dump(object? value, StringBuilder text, int depth)
    {
        if (value is null || depth > 3) return;
        switch (value)
        {
            case string s:
                text.AppendLine(s);
                return;
            case ErrorRecord e:
                text.AppendLine(e.ToString()).AppendLine(e.FullyQualifiedErrorId).AppendLine(e.CategoryInfo.ToString())
                    .AppendLine(e.ErrorDetails?.ToString()).AppendLine(e.ScriptStackTrace);
                Dump(e.TargetObject, text, depth + 1);
                Dump(e.Exception, text, depth + 1);
                return;
            case Exception ex:
                for (var x = ex; x is not null; x = x.InnerException)
                {
                    text.AppendLine(x.ToString());
                    foreach (DictionaryEntry d in x.Data) text.AppendLine($"{d.Key}={d.Value}");
                }
                if (ex is BitbucketZdu.Core.BbException bb) Dump(bb.Target, text, depth + 1);
                if (ex is AggregateException agg) foreach (var inner in agg.InnerExceptions) Dump(inner, text, depth + 1);
                return;
        }
        var pso = value as PSObject ?? PSObject.AsPSObject(value);
        text.AppendLine(pso.ToString());
        if (pso.BaseObject is string || pso.BaseObject.GetType().IsPrimitive) return;
        foreach (var p in pso.Properties)
        {
            object? v;
            try { v = p.Value; }
            catch (Exception) { continue; }
            if (v is null) continue;
            if (v is string or ValueType) text.AppendLine($"{p.Name}={v}");
            else if (v is IEnumerable list and not IDictionary) foreach (var item in list) Dump(item, text, depth + 1);
            else Dump(v, text, depth + 1);
        }
    }

    private void Get(string path, IResponseBuilder response) =>
        _server.Given(Request.Create().WithPath(path).UsingGet()).RespondWith(response);

    private void Post(string path, IResponseBuilder response) =>
        _server.Given(Request.Create().WithPath(path).UsingPost()).RespondWith(response);

    public static IEnumerable<object[]> Scenarios => new[]
    {
        "success", "401", "403 with a token", "500 with retries", "timeout", "redirect to SSO", "ambiguous POST (502)",
        "server echoes the credentials", "load-balancer descriptions", "connection object",
    }.Select(s => new object[] { s });

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void No_canary_secret_shows_on_any_stream(string scenario)
    {
        string script;
        var expectErrors = true;
        switch (scenario)
        {
            case "success":
                Get("/rest/zdu/cluster", Reply(Stable));
                script = "Connect-BbCluster $uri -Credential $cred -PassThru; Get-BbClusterStatus; Get-BbNode; Get-BbNode | Format-List * | Out-String; Enable-BbUpgradeMode -WhatIf";
                expectErrors = false;
                break;
            case "401":
                Get("/rest/zdu/cluster", Reply("""{"errors":[{"message":"Authentication failed. Please check your credentials and try again."}]}""", 401));
                script = "Connect-BbCluster $uri -Credential $cred";
                break;
            case "403 with a token":
                Get("/rest/zdu/cluster", Reply("""{"errors":[{"message":"You are not permitted to access this resource"}]}""", 403));
                script = "Connect-BbCluster $uri -Token $token";
                break;
            case "500 with retries":
                Get("/rest/zdu/cluster", Reply("""{"errors":[{"message":"boom"}]}""", 503));
                script = "Connect-BbCluster $uri -Credential $cred -TimeoutSec 2";
                break;
            case "timeout":
                Get("/rest/zdu/cluster", Reply(Stable).WithDelay(TimeSpan.FromSeconds(4)));
                script = "Connect-BbCluster $uri -Credential $cred -TimeoutSec 1";
                break;
            case "redirect to SSO":
                Get("/rest/zdu/cluster", Response.Create().WithStatusCode(302).WithHeader("Location", $"https://sso.example.com/login?user={Canary.UserName}&pw={Canary.Password}"));
                script = "Connect-BbCluster $uri -Credential $cred";
                break;
            case "ambiguous POST (502)":
                Get("/rest/zdu/cluster", Reply(Stable));
                Post("/rest/zdu/start", Reply("bad gateway", 502));
                script = "Connect-BbCluster $uri -Credential $cred; Enable-BbUpgradeMode -Confirm:$false";
                break;
            case "server echoes the credentials":
                // A misconfigured proxy's error page that repeats the request headers, and one that repeats the token.
                Get("/rest/zdu/cluster", Response.Create().WithStatusCode(500).WithHeader("Content-Type", "application/json")
                    .WithBody("""{"errors":[{"message":"Bad header: Authorization={{request.headers.Authorization}}"}]}""").WithTransformer());
                script = "Connect-BbCluster $uri -Credential $cred -TimeoutSec 2; Connect-BbCluster $uri -Token $token -TimeoutSec 2";
                break;
            case "load-balancer descriptions":
                script = "New-BbLoadBalancer -Kind Apache -Endpoint http://127.0.0.1:1/balancer-manager -Backend bb -ApiCredential $cred | Format-List * | Out-String;"
                    + " New-BbLoadBalancer -Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g -Backend pool -AzureAuthentication Token -AzureToken $token;"
                    + " New-BbLoadBalancer -Kind AzureAppGateway -Endpoint /subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationGateways/g -Backend pool -AzureAuthentication ServicePrincipal -TenantId t -ServicePrincipal $cred | ConvertTo-Json -Depth 2 -WarningAction SilentlyContinue";
                expectErrors = false;
                break;
            default: // connection object
                Get("/rest/zdu/cluster", Reply(Stable));
                script = "$c = Connect-BbCluster $uri -Credential $cred -PassThru; $c | Format-List * | Out-String; $c | ConvertTo-Json -Depth 3 -WarningAction SilentlyContinue; Get-BbClusterStatus -Connection $c | Format-Table | Out-String";
                expectErrors = false;
                break;
        }

        var (text, errors) = RunAll(script);

        Assert.True(text.Length > 0, "the scenario wrote nothing to scan");
        Assert.Equal(expectErrors, errors > 0);
        Canary.AssertAbsent(text, $"the streams of scenario '{scenario}'");
        if (scenario == "server echoes the credentials")
        {
            Assert.Contains("Authorization=Basic ***", text); // the echo arrived and was redacted, not dropped
            Assert.Contains("Authorization=Bearer ***", text);
        }
        if (scenario != "load-balancer descriptions") Assert.NotEmpty(_server.LogEntries); // the credentials were really sent
    }

    public void Dispose()
    {
        _runspace.Dispose();
        _server.Stop();
    }
}
