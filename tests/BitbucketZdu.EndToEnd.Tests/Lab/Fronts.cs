using System.Collections;
using System.Net.Sockets;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>A real load balancer in front of the simulated cluster: where users come in, and how the profile names it.</summary>
public interface IFront : IAsyncDisposable
{
    Uri Frontend { get; }

    /// <summary>The profile's LoadBalancers entry (Name 'lb1').</summary>
    Hashtable ProfileEntry();

    /// <summary>The node's member as this load balancer names it.</summary>
    string MemberOf(SimNode node);
}

public enum FrontKind { HAProxy, Nginx }

public static class Front
{
    public static Task<IFront> StartAsync(FrontKind kind, string dir, IReadOnlyList<SimNode> nodes) => kind switch
    {
        FrontKind.HAProxy => HAProxyFront.StartAsync(dir, nodes),
        _ => NginxFront.StartAsync(dir, nodes),
    };

    internal static async Task WaitListeningAsync(ExternalProcess process, int port, string what)
    {
        await Eventually.UntilAsync(() =>
        {
            if (process.HasExited) throw new InvalidOperationException($"{what} exited: {process.Output}");
            using var c = new TcpClient();
            try { c.Connect("127.0.0.1", port); return true; } catch (SocketException) { return false; }
        }, TimeSpan.FromSeconds(15), $"{what} listening on 127.0.0.1:{port}");
    }
}

/// <summary>HAProxy with an admin runtime socket, health checks on /status and short timeouts.</summary>
public sealed class HAProxyFront : IFront
{
    private readonly ExternalProcess _process;

    private HAProxyFront(ExternalProcess process, int port, int adminPort)
    {
        _process = process;
        Frontend = new Uri($"http://127.0.0.1:{port}/");
        AdminPort = adminPort;
    }

    public Uri Frontend { get; }
    public int AdminPort { get; }

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes)
    {
        var haproxy = RequiredTool.Find("haproxy");
        int port = FreePort.Next(), admin = FreePort.Next();
        var cfg = Path.Combine(dir, "haproxy.cfg");
        File.WriteAllText(cfg, $"""
            global
                stats socket ipv4@127.0.0.1:{admin} level admin
                maxconn 512
            defaults
                mode http
                timeout connect 1s
                timeout client 10s
                timeout server 10s
                timeout http-request 5s
            frontend users
                bind 127.0.0.1:{port}
                default_backend bitbucket
            backend bitbucket
                balance roundrobin
                option httpchk GET /status
                # Without 'timeout check' a check may take only 'inter' (200 ms): at load 40 a slow /status marked a node down.
                timeout check 2s
                default-server inter 200 fall 3 rise 1
            {string.Join("\n", nodes.Select(n => $"    server {n.Name} 127.0.0.1:{n.Port} check"))}
            """ + "\n");
        var process = ExternalProcess.Start(haproxy, new[] { "-db", "-f", cfg });
        await Front.WaitListeningAsync(process, port, "haproxy");
        await Front.WaitListeningAsync(process, admin, "haproxy admin socket");
        return new HAProxyFront(process, port, admin);
    }

    public Hashtable ProfileEntry() => new()
    {
        ["Name"] = "lb1", ["Kind"] = "HAProxy",
        ["Settings"] = new Hashtable { ["Endpoint"] = $"tcp://127.0.0.1:{AdminPort}", ["Backend"] = "bitbucket" },
    };

    public string MemberOf(SimNode node) => node.Name;

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}

/// <summary>NGINX (open source): upstream 'bitbucket' in its own included file, which the module's provider edits and reloads.</summary>
public sealed class NginxFront : IFront
{
    private readonly ExternalProcess _process;
    private readonly string _dir;
    private readonly string _command;

    private NginxFront(ExternalProcess process, string dir, int port, string command)
    {
        _process = process;
        _dir = dir;
        _command = command;
        Frontend = new Uri($"http://127.0.0.1:{port}/");
    }

    public Uri Frontend { get; }
    private string UpstreamFile => Path.Combine(_dir, "upstream.conf");

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes)
    {
        var nginx = RequiredTool.Find("nginx");
        var port = FreePort.Next();
        File.WriteAllText(Path.Combine(dir, "upstream.conf"),
            "upstream bitbucket {\n" + string.Join("", nodes.Select(n => $"    server 127.0.0.1:{n.Port} max_fails=0; # {n.Name}\n")) + "}\n");
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), $$"""
            pid {{dir}}/nginx.pid;
            worker_processes 1;
            events { worker_connections 512; }
            http {
                access_log off;
                client_body_temp_path {{dir}}/client_temp;
                proxy_temp_path {{dir}}/proxy_temp;
                fastcgi_temp_path {{dir}}/fastcgi_temp;
                uwsgi_temp_path {{dir}}/uwsgi_temp;
                scgi_temp_path {{dir}}/scgi_temp;
                include {{dir}}/upstream.conf;
                server {
                    listen 127.0.0.1:{{port}};
                    location / {
                        proxy_pass http://bitbucket;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_connect_timeout 1s;
                    }
                }
            }
            """);
        var args = new[] { "-c", Path.Combine(dir, "nginx.conf"), "-p", dir + "/", "-e", Path.Combine(dir, "error.log") };
        var process = ExternalProcess.Start(nginx, args.Append("-g").Append("daemon off;"));
        await Front.WaitListeningAsync(process, port, "nginx");
        return new NginxFront(process, dir, port, nginx + " " + string.Join(" ", args));
    }

    public Hashtable ProfileEntry() => new()
    {
        ["Name"] = "lb1", ["Kind"] = "Nginx",
        ["Settings"] = new Hashtable
        {
            ["Endpoint"] = UpstreamFile, ["Backend"] = "bitbucket", ["NginxCommand"] = _command, ["NginxPidFile"] = Path.Combine(_dir, "nginx.pid"),
        },
    };

    public string MemberOf(SimNode node) => $"127.0.0.1:{node.Port}";

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
