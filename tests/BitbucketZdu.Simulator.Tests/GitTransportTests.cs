using System.Net.Sockets;
using System.Text;
using BitbucketZdu.Simulator.Node;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>The node's git transports: the SSH-like port (plugin.ssh.port) and clones under /scm; the context path.</summary>
public sealed class GitTransportTests
{
    [Fact]
    public async Task A_clone_over_ssh_in_flight_at_a_graceful_stop_finishes_and_new_ones_are_refused()
    {
        var ssh = FreePort.Next();
        await using var c = await SimCluster.StartAsync(1, extraProperties: $"graceful.shutdown.timeout=10s\nplugin.ssh.port={ssh}\nbbsim.git.duration=3s");
        var node = c.Nodes[0];

        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", ssh);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        Assert.Equal("SSH-2.0-bbsim node-1", await reader.ReadLineAsync());
        await stream.WriteAsync(Encoding.ASCII.GetBytes("git-upload-pack '/project/repo.git'\n"));
        Assert.StartsWith("pack ", await reader.ReadLineAsync());

        var stop = c.StopNodeAsync(node);
        await Eventually.UntilAsync(() => node.Log.Contains("Git over SSH: 1 clone(s) in flight"), SimCluster.Wait, "the stop seeing the clone in flight");
        // No new clone once the stop began: the SSH listener is closed.
        using (var late = new TcpClient())
            await Assert.ThrowsAnyAsync<SocketException>(() => late.ConnectAsync("127.0.0.1", ssh));
        string? line, last = null;
        while ((line = await reader.ReadLineAsync()) is not null) last = line;
        Assert.Equal("done node-1", last);
        var (code, output) = await stop;
        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task A_clone_over_http_under_scm_streams_for_its_duration()
    {
        await using var c = await SimCluster.StartAsync(1);
        using var http = SimCluster.Http(admin: false);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var response = await http.GetAsync(new Uri(c.Nodes[0].Url, "scm/project/repo.git/info/refs?service=git-upload-pack&durationMs=600"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(200, (int)response.StatusCode);
        Assert.EndsWith("done node-1\n", body);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(550), $"answered in {sw.Elapsed.TotalMilliseconds:0} ms");
    }

    [Theory]
    [InlineData("/bitbucket/status", "/bitbucket", "/status")]
    [InlineData("/bitbucket", "/bitbucket", "/")]
    [InlineData("/bitbucket/rest/zdu/cluster", "/bitbucket", "/rest/zdu/cluster")]
    [InlineData("/status", "/bitbucket", null)]
    [InlineData("/bitbucketx/status", "/bitbucket", null)]
    [InlineData("/bbsim/node", "/bitbucket", "/bbsim/node")]
    [InlineData("/status", "", "/status")]
    public void Paths_are_served_under_the_context_path(string path, string contextPath, string? expected) =>
        Assert.Equal(expected, NodeHost.UnderContextPath(path, contextPath));

    [Theory]
    [InlineData("bitbucket", "/bitbucket")]
    [InlineData("/bitbucket/", "/bitbucket")]
    [InlineData("/", "")]
    [InlineData("", "")]
    public void The_context_path_is_normalised(string text, string expected) => Assert.Equal(expected, NodeConfig.ContextPathOf(text));
}
