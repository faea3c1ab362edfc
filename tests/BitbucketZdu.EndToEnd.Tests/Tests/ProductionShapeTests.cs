using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// The production-shaped lab: nodes under the context path /bitbucket, HTTPS on the nodes and on HAProxy's front with
/// a test CA the lab makes, HTTP and SSH backends, web and git load.
/// </summary>
public sealed class ProductionShapeTests
{
    private readonly ITestOutputHelper _output;

    public ProductionShapeTests(ITestOutputHelper output) => _output = output;

    private static LabOptions Shape => new() { Front = FrontKind.HAProxy, ContextPath = "/bitbucket", Https = true };

    [Fact]
    public async Task Users_reach_every_node_under_the_context_path_over_https_with_web_and_git()
    {
        await using var lab = await E2eLab.StartAsync(_output, Shape);
        Assert.Equal("https", lab.Front.Frontend.Scheme);
        Assert.EndsWith("/bitbucket/", lab.Front.Frontend.AbsolutePath);
        Assert.All(lab.Cluster.Nodes, n => Assert.Equal("https://127.0.0.1:" + n.Port + "/bitbucket/", n.Url.ToString()));

        // HAProxy's health checks pass only on <context>/status over HTTPS verified with the CA: every node serves.
        await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames);
        await Eventually.UntilAsync(() => lab.Load.GitTotal(UserLoad.GitKind.Http) > 3 && lab.Load.GitTotal(UserLoad.GitKind.Ssh) > 3,
            TimeSpan.FromSeconds(30), "clones over HTTP and SSH through HAProxy: " + lab.Load.Figures);
        using (var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
        {
            // Without the test CA the node's certificate is not trusted.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync(lab.Cluster.Nodes[0].Url));
        }
        using (var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Issuer == lab.Ca!.Subject })
        using (var direct = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) })
        {
            // Under the context path /status answers; at the root a node answers 404, as Bitbucket behind /bitbucket does.
            var node = lab.Cluster.Nodes[0];
            Assert.Equal(200, (int)(await direct.GetAsync(new Uri(node.Url, "status"))).StatusCode);
            Assert.Equal(404, (int)(await direct.GetAsync($"https://127.0.0.1:{node.Port}/status")).StatusCode);
        }
        await lab.Load.StopAsync();
        _output.WriteLine(lab.Load.Figures);
        Assert.True(lab.Load.Failed == 0, lab.Load.FailureSummary);
        Assert.True(lab.Load.GitFailed(UserLoad.GitKind.Http) == 0 && lab.Load.GitFailed(UserLoad.GitKind.Ssh) == 0, lab.Load.GitFailureSummary);
    }

    /// <summary>
    /// The done-when run on the full production shape: the health gate's /status under the context path, the /status
    /// probe and every API read trusting the lab's CA through the profile's Tls.TrustedCertificatePath.
    /// </summary>
    [Fact]
    public async Task Upgrade_under_the_context_path_over_https_fails_no_web_request_and_no_clone()
    {
        await using var lab = await E2eLab.StartAsync(_output, Shape);
        var run = await lab.InvokeRollingUpgradeAsync(hook: (phase, node) => { if (phase == "NodeStarting" && node is not null) lab.Load.MarkDrain(node); });
        await lab.Load.StopAsync();
        lab.Print("rolling upgrade under /bitbucket over HTTPS through HAProxy (HTTP + SSH backends)", run);

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.True(lab.Load.Failed == 0, lab.Load.FailureSummary);
        Assert.True(lab.Load.GitFailed(UserLoad.GitKind.Http) == 0 && lab.Load.GitFailed(UserLoad.GitKind.Ssh) == 0, lab.Load.GitFailureSummary);
        Assert.Equal(lab.Load.InFlightAtDrain, lab.Load.InFlightAtDrainCompleted);
    }
}
