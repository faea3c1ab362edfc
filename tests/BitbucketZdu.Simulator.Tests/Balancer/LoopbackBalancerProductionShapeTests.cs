using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BitbucketZdu.Simulator.Balancer;
using BitbucketZdu.Simulator.Tls;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests.Balancer;

/// <summary>
/// The loopback balancer in front of a production-shaped node (context path /bitbucket, HTTPS with an internal CA from
/// <c>bbsim certs</c>, a git-over-SSH port): HTTPS front, HTTPS health checks under the context path verified against the
/// CA, and a TCP frontend/backend for SSH whose server is drained on its own — what the demo needs without HAProxy.
/// </summary>
public sealed class LoopbackBalancerProductionShapeTests
{
    [Fact]
    public async Task Https_front_and_an_ssh_backend_carry_web_and_git_and_a_drained_ssh_server_finishes_its_clone_and_takes_no_new_one()
    {
        var c = SimCluster.Create();
        await using var _ = c;
        var (code, output) = await SimCluster.BbsimAsync("certs", "--output", Path.Combine(c.Root, "tls"));
        Assert.True(code == 0, output);
        var files = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(new[] { "ca.pem", "node.pem", "node.key", "front.pem" }, files.Select(Path.GetFileName));
        var (caFile, certFile, keyFile) = (files[0], files[1], files[2]);

        var ssh = FreePort.Next();
        var node = c.AddNode($"server.context-path=/bitbucket\nplugin.ssh.port={ssh}\nbbsim.git.duration=1500ms\nbbsim.ssl.certificate={certFile}\nbbsim.ssl.key={keyFile}");
        await c.StartNodeAsync(node, await c.InstallAsync(node, "8.19.3"));

        await using var lb = await LoopbackBalancer.StartAsync(new BalancerOptions
        {
            Servers = new[] { new BalancerServerOptions(node.Name, "127.0.0.1", node.Port) },
            SshServers = new[] { new BalancerServerOptions(node.Name, "127.0.0.1", ssh) },
            SshListenPort = 0,
            CheckPath = "/bitbucket/status",
            CertificateFile = certFile,
            KeyFile = keyFile,
            ServerCaFile = caFile,
            CheckInterval = TimeSpan.FromMilliseconds(100),
            CheckTimeout = TimeSpan.FromSeconds(3),
        });
        Assert.NotNull(lb.SshPort);
        // Both servers UP by the HTTPS check of /bitbucket/status (started UP, so wait for a check that passed).
        await Eventually.UntilAsync(() => Task.FromResult(lb.Servers[0].ChecksPassed > 0 && lb.SshServers[0].ChecksPassed > 0 && lb.Servers[0].IsUp && lb.SshServers[0].IsUp),
            SimCluster.Wait, "both backends' checks passing over HTTPS under /bitbucket");

        // Web over the HTTPS front, trusting the demo CA only.
        using var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(ca);
        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy } }) { Timeout = TimeSpan.FromSeconds(15) };
        using (var web = await http.GetAsync($"https://localhost:{lb.Port}/bitbucket/"))
        {
            Assert.Equal(200, (int)web.StatusCode);
            Assert.Equal(node.Name, web.Headers.GetValues("X-Bbsim-Node").Single());
        }
        var clone = await http.GetStringAsync($"https://localhost:{lb.Port}/bitbucket/scm/project/repo.git/info/refs?service=git-upload-pack&durationMs=200");
        Assert.EndsWith($"done {node.Name}\n", clone);

        // A clone over SSH through the balancer; drained while in flight, it still ends with 'done'.
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", lb.SshPort!.Value);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        Assert.Equal($"SSH-2.0-bbsim {node.Name}", await reader.ReadLineAsync());
        await stream.WriteAsync(Encoding.ASCII.GetBytes("git-upload-pack '/project/repo.git'\n"));
        Assert.StartsWith("pack ", await reader.ReadLineAsync());
        Assert.Equal("\n", await Admin(lb, $"set server bitbucket_ssh/{node.Name} state drain"));
        var stat = await Admin(lb, "show stat");
        Assert.Contains($"bitbucket_ssh,{node.Name},0,0,1,", stat); // scur 1: the clone in flight, what a drain waits for
        Assert.Contains("git_ssh,FRONTEND,", stat);
        Assert.Equal("UP", lb.Servers[0].Status); // the HTTP backend is not touched by the SSH one's drain
        string? line, last = null;
        while ((line = await reader.ReadLineAsync()) is not null) last = line;
        Assert.Equal($"done {node.Name}", last);
        await Eventually.UntilAsync(() => Task.FromResult(lb.SshServers[0].CurrentSessions == 0), TimeSpan.FromSeconds(5), "the session ended");

        // Drained: a new SSH connection reaches no server and is closed without a banner.
        using var late = new TcpClient();
        await late.ConnectAsync("127.0.0.1", lb.SshPort!.Value);
        using var lateReader = new StreamReader(late.GetStream(), Encoding.ASCII);
        Assert.Null(await lateReader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains($"5 bitbucket_ssh 1 {node.Name} 127.0.0.1 2 8 ", await Admin(lb, "show servers state bitbucket_ssh"));
    }

    [Fact]
    public void The_production_shape_options_parse_and_half_given_pairs_are_refused()
    {
        var o = BalancerCommand.Parse(new[] { "--listen", "0", "--admin-port", "0", "--server", "n1=127.0.0.1:7990", "--check-path", "/bitbucket/status",
            "--tls-cert", "c.pem", "--tls-key", "k.pem", "--server-ca", "ca.pem", "--ssh-listen", "0", "--ssh-server", "n1=127.0.0.1:7999" });
        Assert.Equal(("/bitbucket/status", "c.pem", "k.pem", "ca.pem", 0, "n1", 7999),
            (o.CheckPath, o.CertificateFile, o.KeyFile, o.ServerCaFile, o.SshListenPort, o.SshServers[0].Name, o.SshServers[0].Port));
        Assert.Contains("--tls-key", Assert.Throws<FormatException>(() => BalancerCommand.Parse(new[] { "--server", "n1=127.0.0.1:1", "--tls-cert", "c.pem" })).Message);
        Assert.Contains("--ssh-listen", Assert.Throws<FormatException>(() => BalancerCommand.Parse(new[] { "--server", "n1=127.0.0.1:1", "--ssh-server", "n1=127.0.0.1:2" })).Message);
    }

    [Fact]
    public void The_certificate_set_is_a_ca_and_a_localhost_certificate_it_signed()
    {
        var dir = Directory.CreateTempSubdirectory("bbsim-certs-").FullName;
        try
        {
            var (ca, files) = SimCertificates.WriteSet(dir, "Test CA");
            using (ca)
            using (var leaf = X509Certificate2.CreateFromPemFile(files.CertificateFile, files.KeyFile))
            using (var combined = X509Certificate2.CreateFromPemFile(files.CombinedFile))
            {
                Assert.True(leaf.HasPrivateKey);
                Assert.Equal(leaf.Thumbprint, combined.Thumbprint);
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(X509CertificateLoader.LoadCertificateFromFile(files.CaFile));
                Assert.True(chain.Build(leaf), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
                Assert.True(leaf.MatchesHostname("localhost"));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static async Task<string> Admin(LoopbackBalancer lb, string line)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", lb.AdminPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\n"));
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }
}
