using System.Collections;
using System.Net.Sockets;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>A real load balancer in front of the simulated cluster: where users come in, and how the profile names it.</summary>
public interface IFront : IAsyncDisposable
{
    Uri Frontend { get; }

    /// <summary>Where git over SSH comes in (the TCP frontend), or null when this front carries HTTP only.</summary>
    System.Net.IPEndPoint? SshFrontend => null;

    /// <summary>The profile's LoadBalancers entry (Name 'lb1').</summary>
    Hashtable ProfileEntry();

    /// <summary>The node's member as this load balancer names it.</summary>
    string MemberOf(SimNode node);

    /// <summary>Every LoadBalancers entry: 'lb1' (HTTP) and, with an SSH backend, 'lb1-ssh'.</summary>
    object[] ProfileEntries() => new object[] { ProfileEntry() };

    /// <summary>The node's Members map (load balancer name → member), one per backend it is in.</summary>
    Hashtable MembersOf(SimNode node) => new() { ["lb1"] = MemberOf(node) };

    /// <summary>
    /// Whether the load balancer sends users to <paramref name="node"/> now, per backend the node is in (backend → in
    /// rotation and healthy), read from the load balancer itself (HAProxy's runtime socket, NGINX's upstream files,
    /// Apache's balancer-manager page, a stub's member states), never from the module; null when this front cannot tell.
    /// </summary>
    Task<IReadOnlyDictionary<string, bool>?> InRotationAsync(SimNode node) => Task.FromResult<IReadOnlyDictionary<string, bool>?>(null);
}

/// <summary>How the front is built: the context path it health-checks, TLS to the nodes and on its own front.</summary>
public sealed class FrontOptions
{
    /// <summary>The nodes' server.context-path ("" or "/bitbucket"): the health check asks &lt;context&gt;/status.</summary>
    public string ContextPath { get; init; } = "";
    /// <summary>The test CA (PEM) that signed the nodes' certificates: the front talks HTTPS to them and verifies with it.</summary>
    public string? NodeCaFile { get; init; }
    /// <summary>Certificate and key in one PEM file: the front serves HTTPS with it.</summary>
    public string? FrontPemFile { get; init; }

    /// <summary>The test CA as a certificate (for fronts written in .NET: a stub's data plane).</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? NodeCa() =>
        NodeCaFile is null ? null : System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(NodeCaFile));

    /// <summary>The front's certificate with its key (for fronts written in .NET), or null for plain HTTP.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? FrontCertificate()
    {
        if (FrontPemFile is null) return null;
        using var pem = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(FrontPemFile, FrontPemFile);
        // Kestrel wants a key it can use beyond this object's life: re-imported from PKCS#12.
        return System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(pem.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null);
    }

    /// <summary>The front's URL: <paramref name="scheme"/>://127.0.0.1:<paramref name="port"/> and the context path.</summary>
    public Uri FrontendUrl(string scheme, int port) => new($"{scheme}://127.0.0.1:{port}{ContextPath}/");
}

/// <summary>HAProxy and Nginx here; the other kinds in KindFronts.cs (Apache real, the rest stubs over HAProxy traffic).</summary>
public enum FrontKind { HAProxy, Nginx, NginxPlus, Apache, AzureAppGateway, AwsElb, F5BigIp }

public static class Front
{
    public static Task<IFront> StartAsync(FrontKind kind, string dir, IReadOnlyList<SimNode> nodes, FrontOptions? options = null) => kind switch
    {
        FrontKind.HAProxy => HAProxyFront.StartAsync(dir, nodes, options ?? new FrontOptions()),
        FrontKind.Nginx => NginxFront.StartAsync(dir, nodes, options ?? new FrontOptions()),
        _ => KindFronts.StartAsync(kind, dir, nodes, options ?? new FrontOptions()),
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

/// <summary>
/// HAProxy as Atlassian documents it for Bitbucket Data Center: an HTTP frontend/backend with cookie stickiness and a
/// health check on &lt;context&gt;/status, and, when the nodes have a git-over-SSH port, a TCP frontend/backend for SSH
/// whose servers are checked on the same HTTP /status (a node that is stopping fails it at once). An admin runtime
/// socket, short timeouts.
/// </summary>
public sealed class HAProxyFront : IFront
{
    private readonly ExternalProcess _process;
    private readonly bool _ssh;

    private HAProxyFront(ExternalProcess process, Uri frontend, int adminPort, int? sshPort)
    {
        _process = process;
        Frontend = frontend;
        AdminPort = adminPort;
        _ssh = sshPort is not null;
        SshFrontend = sshPort is int p ? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, p) : null;
    }

    public Uri Frontend { get; }
    public int AdminPort { get; }
    public System.Net.IPEndPoint? SshFrontend { get; }

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        var haproxy = RequiredTool.Find("haproxy");
        int port = FreePort.Next(), admin = FreePort.Next();
        int? ssh = nodes.All(n => n.SshPort > 0) ? FreePort.Next() : null;
        var cfg = Path.Combine(dir, "haproxy.cfg");
        var toNode = options.NodeCaFile is null ? "" : $" ssl verify required ca-file {options.NodeCaFile}";
        var checkTls = options.NodeCaFile is null ? "" : $" check-ssl verify required ca-file {options.NodeCaFile}";
        var bindTls = options.FrontPemFile is null ? "" : $" ssl crt {options.FrontPemFile}";
        var sshSections = ssh is null ? "" : $"""
            frontend git_ssh
                mode tcp
                bind 127.0.0.1:{ssh}
                timeout client 30s
                default_backend bitbucket_ssh
            backend bitbucket_ssh
                mode tcp
                balance roundrobin
                timeout server 30s
                option httpchk GET {options.ContextPath}/status
                timeout check 2s
                default-server inter 200 fall 3 rise 1
            {string.Join("\n", nodes.Select(n => $"    server {n.Name} 127.0.0.1:{n.SshPort} check port {n.Port}{checkTls}"))}

            """;
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
                bind 127.0.0.1:{port}{bindTls}
                default_backend bitbucket
            backend bitbucket
                balance roundrobin
                # Sticky sessions, as Bitbucket Data Center requires (Atlassian's HAProxy example inserts a routing cookie).
                cookie BBROUTE insert indirect nocache
                option httpchk GET {options.ContextPath}/status
                # Without 'timeout check' a check may take only 'inter' (200 ms): at load 40 a slow /status marked a node down.
                timeout check 2s
                default-server inter 200 fall 3 rise 1
            {string.Join("\n", nodes.Select(n => $"    server {n.Name} 127.0.0.1:{n.Port} check cookie {n.Name}{toNode}"))}

            """ + sshSections);
        var process = ExternalProcess.Start(haproxy, new[] { "-db", "-f", cfg });
        await Front.WaitListeningAsync(process, port, "haproxy");
        await Front.WaitListeningAsync(process, admin, "haproxy admin socket");
        if (ssh is int s) await Front.WaitListeningAsync(process, s, "haproxy git_ssh frontend");
        var frontend = new Uri($"{(options.FrontPemFile is null ? "http" : "https")}://127.0.0.1:{port}{options.ContextPath}/");
        return new HAProxyFront(process, frontend, admin, ssh);
    }

    public Hashtable ProfileEntry() => Entry("lb1", "bitbucket");

    private Hashtable Entry(string name, string backend) => new()
    {
        ["Name"] = name, ["Kind"] = "HAProxy",
        ["Settings"] = new Hashtable { ["Endpoint"] = $"tcp://127.0.0.1:{AdminPort}", ["Backend"] = backend },
    };

    public object[] ProfileEntries() => _ssh ? new object[] { ProfileEntry(), Entry("lb1-ssh", "bitbucket_ssh") } : new object[] { ProfileEntry() };

    public Hashtable MembersOf(SimNode node) => _ssh ? new() { ["lb1"] = node.Name, ["lb1-ssh"] = node.Name } : new() { ["lb1"] = node.Name };

    public string MemberOf(SimNode node) => node.Name;

    /// <summary>From <c>show servers state</c>: a server takes users when its operational state is 2 (running) and its admin state 0 (no drain, no maintenance).</summary>
    public async Task<IReadOnlyDictionary<string, bool>?> InRotationAsync(SimNode node)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", AdminPort);
        var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes("show servers state\n"));
        var text = await new StreamReader(stream).ReadToEndAsync();
        var states = new Dictionary<string, bool>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 7 || f[0].StartsWith('#') || f[3] != node.Name) continue;
            states[f[1]] = f[5] == "2" && f[6] == "0";
        }
        return states;
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}

/// <summary>
/// NGINX (open source): upstream 'bitbucket' (http) in its own included file, which the module's provider edits and
/// reloads, and, when the nodes have a git-over-SSH port, upstream 'bitbucket_ssh' in the <c>stream</c> module (TCP) in
/// another file, edited the same way (Atlassian: a load balancer for Bitbucket Data Center carries HTTP and SSH).
/// </summary>
public sealed class NginxFront : IFront
{
    private const string StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so";
    private readonly ExternalProcess _process;
    private readonly string _dir;
    private readonly string _command;

    private NginxFront(ExternalProcess process, string dir, Uri frontend, string command, int? sshPort)
    {
        _process = process;
        _dir = dir;
        _command = command;
        Frontend = frontend;
        SshFrontend = sshPort is int p ? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, p) : null;
    }

    public Uri Frontend { get; }
    public System.Net.IPEndPoint? SshFrontend { get; }
    private string UpstreamFile => Path.Combine(_dir, "upstream.conf");
    private string StreamUpstreamFile => Path.Combine(_dir, "stream-upstream.conf");

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        var nginx = RequiredTool.Find("nginx");
        var port = FreePort.Next();
        int? ssh = nodes.All(n => n.SshPort > 0) ? FreePort.Next() : null;
        if (ssh is not null && !File.Exists(StreamModule))
            throw new InvalidOperationException($"NGINX's stream module ({StreamModule}) is not installed: run 'bash .ci/install-test-servers.sh' (as root) or install libnginx-mod-stream.");
        // HTTPS to the nodes, verified with the test CA (the node certificate names localhost, so that is the name checked).
        var toNodes = options.NodeCaFile is null ? "http" : "https";
        var nodeTls = options.NodeCaFile is null ? "" : $$"""
                        proxy_ssl_verify on;
                        proxy_ssl_trusted_certificate {{options.NodeCaFile}};
                        proxy_ssl_name localhost;
                        proxy_ssl_server_name on;
            """;
        var listenTls = options.FrontPemFile is null ? "" : $" ssl;\n                    ssl_certificate {options.FrontPemFile};\n                    ssl_certificate_key {options.FrontPemFile}";
        File.WriteAllText(Path.Combine(dir, "upstream.conf"),
            "upstream bitbucket {\n" + string.Join("", nodes.Select(n => $"    server 127.0.0.1:{n.Port} max_fails=0; # {n.Name}\n")) + "}\n");
        var stream = "";
        var loadStream = "";
        if (ssh is int sshPort)
        {
            File.WriteAllText(Path.Combine(dir, "stream-upstream.conf"),
                "upstream bitbucket_ssh {\n" + string.Join("", nodes.Select(n => $"    server 127.0.0.1:{n.SshPort} max_fails=0; # {n.Name}\n")) + "}\n");
            loadStream = $"load_module {StreamModule};";
            stream = $$"""
            stream {
                include {{dir}}/stream-upstream.conf;
                server {
                    listen 127.0.0.1:{{sshPort}};
                    proxy_pass bitbucket_ssh;
                    proxy_connect_timeout 1s;
                }
            }
            """;
        }
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), $$"""
            {{loadStream}}
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
                    listen 127.0.0.1:{{port}}{{listenTls}};
                    location / {
                        proxy_pass {{toNodes}}://bitbucket;
            {{nodeTls}}
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_connect_timeout 1s;
                    }
                }
            }
            {{stream}}
            """);
        var args = new[] { "-c", Path.Combine(dir, "nginx.conf"), "-p", dir + "/", "-e", Path.Combine(dir, "error.log") };
        var process = ExternalProcess.Start(nginx, args.Append("-g").Append("daemon off;"));
        await Front.WaitListeningAsync(process, port, "nginx");
        if (ssh is int s) await Front.WaitListeningAsync(process, s, "nginx stream (git over SSH)");
        var frontend = new Uri($"{(options.FrontPemFile is null ? "http" : "https")}://127.0.0.1:{port}{options.ContextPath}/");
        return new NginxFront(process, dir, frontend, nginx + " " + string.Join(" ", args), ssh);
    }

    public Hashtable ProfileEntry() => Entry("lb1", UpstreamFile, "bitbucket");

    private Hashtable Entry(string name, string file, string upstream) => new()
    {
        ["Name"] = name, ["Kind"] = "Nginx",
        ["Settings"] = new Hashtable
        {
            ["Endpoint"] = file, ["Backend"] = upstream, ["NginxCommand"] = _command, ["NginxPidFile"] = Path.Combine(_dir, "nginx.pid"),
        },
    };

    public object[] ProfileEntries() => SshFrontend is null ? new object[] { ProfileEntry() }
        : new object[] { ProfileEntry(), Entry("lb1-ssh", StreamUpstreamFile, "bitbucket_ssh") };

    public string MemberOf(SimNode node) => $"127.0.0.1:{node.Port}";

    public Hashtable MembersOf(SimNode node) => SshFrontend is null ? new() { ["lb1"] = MemberOf(node) }
        : new() { ["lb1"] = MemberOf(node), ["lb1-ssh"] = $"127.0.0.1:{node.SshPort}" };

    /// <summary>From the upstream files NGINX was last reloaded with: a server line marked <c>down</c> takes no users.</summary>
    public Task<IReadOnlyDictionary<string, bool>?> InRotationAsync(SimNode node)
    {
        var states = new Dictionary<string, bool>();
        void Read(string backend, string file, int port)
        {
            var line = File.ReadAllLines(file).Single(l => l.Contains($" 127.0.0.1:{port} ", StringComparison.Ordinal) || l.Contains($" 127.0.0.1:{port};", StringComparison.Ordinal));
            states[backend] = !System.Text.RegularExpressions.Regex.IsMatch(line.Split('#')[0], @"\bdown\b");
        }
        Read("bitbucket", UpstreamFile, node.Port);
        if (SshFrontend is not null) Read("bitbucket_ssh", StreamUpstreamFile, node.SshPort);
        return Task.FromResult<IReadOnlyDictionary<string, bool>?>(states);
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
