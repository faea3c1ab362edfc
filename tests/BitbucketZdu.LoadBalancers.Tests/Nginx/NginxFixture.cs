using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.Nginx;

/// <summary>NGINX (open source) on loopback with a private prefix; upstream 'bitbucket' lives in its own included file.</summary>
public sealed class NginxFixture : IAsyncLifetime
{
    public TempDir Dir { get; } = new("bbzdu-ngx");
    public Backend Node1 { get; } = new("node-1", TimeSpan.FromMilliseconds(15));
    public Backend Node2 { get; } = new("node-2", TimeSpan.FromMilliseconds(15));
    public int Port { get; } = FreePort.Next();
    public ExternalProcess? Process { get; private set; }
    public string Nginx { get; private set; } = "";

    public string UpstreamFile => Dir.File("upstream.conf");
    public Uri Frontend => new($"http://127.0.0.1:{Port}/");
    public string Command => $"{Nginx} -c {Dir.File("nginx.conf")} -p {Dir.Path}/ -e {Dir.File("error.log")}";
    public string OriginalUpstream => $"# Bitbucket nodes\nupstream bitbucket {{\n    server {Node1.Address} max_fails=0; # node-1\n    server {Node2.Address} max_fails=0;\n}}\n";

    public LoadBalancerDescription Describe(string backend = "bitbucket") =>
        new(LoadBalancerKind.Nginx, new[] { UpstreamFile }, backend) { NginxCommand = Command, RequestTimeout = TimeSpan.FromSeconds(10) };

    public async Task InitializeAsync()
    {
        Nginx = RequiredTool.Find("nginx");
        var d = Dir.Path;
        File.WriteAllText(Dir.File("nginx.conf"), $@"
pid {d}/nginx.pid;
worker_processes 2;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    include {UpstreamFile};
    server {{
        listen 127.0.0.1:{Port};
        location / {{
            proxy_pass http://bitbucket;
            proxy_http_version 1.1;
            proxy_set_header Connection """";
        }}
    }}
}}
");
        File.WriteAllText(UpstreamFile, OriginalUpstream);
        Process = ExternalProcess.Start(Nginx, new[] { "-c", Dir.File("nginx.conf"), "-p", d + "/", "-e", Dir.File("error.log"), "-g", "daemon off;" });
        await Eventually.UntilAsync(() => File.Exists(Dir.File("nginx.pid")) && Loopback.CanConnect(Port), TimeSpan.FromSeconds(15), "nginx listening; output: " + Process.Output);
    }

    /// <summary>Puts the original upstream back and reloads (each test starts from here).</summary>
    public async Task ResetAsync()
    {
        if (File.ReadAllText(UpstreamFile) == OriginalUpstream) return;
        File.WriteAllText(UpstreamFile, OriginalUpstream);
        var (code, output) = await ExternalProcess.RunAsync("/bin/sh", new[] { "-c", Command + " -s reload" }, TimeSpan.FromSeconds(10));
        Assert.True(code == 0, output);
        using var lb = LoadBalancerFactory.Create(Describe());
        await Eventually.UntilAsync(async () => (await lb.GetDrainStatusAsync(null!, CancellationToken.None)).Idle, TimeSpan.FromSeconds(10), "old nginx workers gone");
    }


    public async Task DisposeAsync()
    {
        if (Process is not null) await Process.DisposeAsync();
        Node1.Dispose();
        Node2.Dispose();
        Dir.Dispose();
    }
}
