using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.LoadBalancers.HAProxy;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.HAProxy;

/// <summary>
/// An HAProxy HA pair on loopback in front of two backends: instance A (admin Unix socket, operator-level Unix
/// socket, frontend) and instance B (admin TCP socket), both with backend 'bitbucket' = node-1, node-2 (health checked),
/// and backend 'sticky' (the same two servers with cookie persistence, cookie SRV naming the server), which the
/// frontend uses for requests carrying an X-Sticky header.
/// </summary>
public sealed class HAProxyFixture : IAsyncLifetime
{
    public TempDir Dir { get; } = new("bbzdu-hap");
    public Backend Node1 { get; } = new("node-1", TimeSpan.FromMilliseconds(15));
    public Backend Node2 { get; } = new("node-2", TimeSpan.FromMilliseconds(15));
    public int FrontendPort { get; } = FreePort.Next();
    public int AdminTcpPortB { get; } = FreePort.Next();
    public int FrontendPortB { get; } = FreePort.Next();
    public ExternalProcess? A { get; private set; }
    public ExternalProcess? B { get; private set; }

    public string AdminSocketA => Dir.File("a-admin.sock");
    public string OperatorSocketA => Dir.File("a-oper.sock");
    public string AdminTcpB => $"tcp://127.0.0.1:{AdminTcpPortB}";
    public Uri Frontend => new($"http://127.0.0.1:{FrontendPort}/");

    public LoadBalancerDescription Pair() => new(LoadBalancerKind.HAProxy, new[] { "unix://" + AdminSocketA, AdminTcpB }, "bitbucket")
    { RequestTimeout = TimeSpan.FromSeconds(5) };

    public async Task InitializeAsync()
    {
        var haproxy = RequiredTool.Find("haproxy");
        File.WriteAllText(Dir.File("a.cfg"), Config(FrontendPort,
            $"stats socket {AdminSocketA} mode 600 level admin\n  stats socket {OperatorSocketA} mode 600 level operator"));
        File.WriteAllText(Dir.File("b.cfg"), Config(FrontendPortB, $"stats socket ipv4@127.0.0.1:{AdminTcpPortB} level admin"));
        A = ExternalProcess.Start(haproxy, new[] { "-db", "-f", Dir.File("a.cfg") });
        B = ExternalProcess.Start(haproxy, new[] { "-db", "-f", Dir.File("b.cfg") });
        await Eventually.UntilAsync(() => File.Exists(AdminSocketA) && Loopback.CanConnect(FrontendPort) && Loopback.CanConnect(AdminTcpPortB), TimeSpan.FromSeconds(15),
            "HAProxy A and B listening; output: " + A.Output + B.Output);
        await ResetAsync();
    }

    /// <summary>Both members ready and healthy on both instances (each test starts from here).</summary>
    public async Task ResetAsync()
    {
        foreach (var ep in new[] { "unix://" + AdminSocketA, AdminTcpB })
            foreach (var s in new[] { "bitbucket/node-1", "bitbucket/node-2", "sticky/node-1", "sticky/node-2" })
                await new HAProxyRuntimeClient(ep, TimeSpan.FromSeconds(5)).ExecuteAsync($"set server {s} state ready", CancellationToken.None);
        using var lb = LoadBalancerFactory.Create(Pair());
        await Eventually.UntilAsync(async () => (await lb.GetMembersAsync(CancellationToken.None)).All(m => m.InRotation && m.Health == MemberHealth.Up),
            TimeSpan.FromSeconds(15), "both members UP on both instances");
    }

    private string Config(int frontendPort, string sockets) => $@"
global
  {sockets}
  stats timeout 10s
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
frontend fe
  bind 127.0.0.1:{frontendPort}
  use_backend sticky if {{ req.hdr(X-Sticky) -m found }}
  default_backend bitbucket
backend bitbucket
  balance roundrobin
  server node-1 {Node1.Address} check inter 200ms fall 2 rise 1
  server node-2 {Node2.Address} check inter 200ms fall 2 rise 1
backend sticky
  balance roundrobin
  cookie SRV insert indirect nocache
  server node-1 {Node1.Address} check inter 200ms fall 2 rise 1 cookie node-1
  server node-2 {Node2.Address} check inter 200ms fall 2 rise 1 cookie node-2
backend slowrise
  server node-1 {Node1.Address} check inter 60s fall 1 rise 3
";


    public async Task DisposeAsync()
    {
        if (A is not null) await A.DisposeAsync();
        if (B is not null) await B.DisposeAsync();
        Node1.Dispose();
        Node2.Dispose();
        Dir.Dispose();
    }
}
