using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.LoadBalancers.Tests.Support;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.LoadBalancers.Tests.Apache;

/// <summary>
/// Apache httpd standalone on loopback (own ServerRoot, no /etc/apache2) with balancer://bitbucket over two backends,
/// /balancer-manager open to loopback and /balancer-denied refused to everyone.
/// </summary>
public class ApacheFixture : IAsyncLifetime
{
    private const string Modules = "/usr/lib/apache2/modules";
    public TempDir Dir { get; } = new("bbzdu-apa");
    public Backend Node1 { get; } = new("node-1", TimeSpan.FromMilliseconds(15));
    public Backend Node2 { get; } = new("node-2", TimeSpan.FromMilliseconds(15));
    public int Port { get; } = FreePort.Next();
    public ExternalProcess? Process { get; private set; }

    /// <summary>When set, the balancer-manager asks for HTTP Basic (mod_auth_basic, an AuthUserFile) with this user.</summary>
    protected virtual string? BasicUser => null;
    protected virtual string? BasicPassword => null;

    public Uri Frontend => new($"http://127.0.0.1:{Port}/");
    public string Manager => $"http://127.0.0.1:{Port}/balancer-manager";
    public string Member1 => $"http://{Node1.Address}";
    public string Member2 => $"http://{Node2.Address}";

    public LoadBalancerDescription Describe(string backend = "bitbucket", string? manager = null) =>
        new(LoadBalancerKind.Apache, new[] { manager ?? Manager }, backend)
        {
            RequestTimeout = TimeSpan.FromSeconds(5),
            UserName = BasicUser,
            Password = BasicPassword is null ? null : Canary.Secure(BasicPassword),
        };

    public async Task InitializeAsync()
    {
        var apache = RequiredTool.Find("apache2");
        var d = Dir.Path;
        var mods = new[] { "mpm_event", "authz_core", "authz_host", "slotmem_shm", "proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "status" }
            .Concat(BasicUser is null ? Array.Empty<string>() : new[] { "auth_basic", "authn_core", "authn_file", "authz_user" }).ToArray();
        if (BasicUser is not null)
            File.WriteAllText(Dir.File("htpasswd"), BasicUser + ":{SHA}" + Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(BasicPassword!))) + "\n");
        var managerAccess = BasicUser is null ? "Require ip 127.0.0.1"
            : $"AuthType Basic\n    AuthName \"balancer-manager\"\n    AuthBasicProvider file\n    AuthUserFile {d}/htpasswd\n    Require valid-user";
        File.WriteAllText(Dir.File("httpd.conf"), $@"
ServerRoot {d}
PidFile {d}/httpd.pid
DefaultRuntimeDir {d}
Mutex file:{d} default
ErrorLog {d}/error.log
LogLevel warn
Listen 127.0.0.1:{Port}
ServerName 127.0.0.1
UseCanonicalName On
{string.Join("\n", mods.Select(m => $"LoadModule {m}_module {Modules}/mod_{m}.so"))}
KeepAliveTimeout 5
<Proxy balancer://bitbucket>
    BalancerMember {Member1}
    BalancerMember {Member2}
</Proxy>
<Location /balancer-manager>
    SetHandler balancer-manager
    {managerAccess}
</Location>
<Location /balancer-denied>
    SetHandler balancer-manager
    Require all denied
</Location>
ProxyPass /balancer-manager !
ProxyPass /balancer-denied !
ProxyPass / balancer://bitbucket/
");
        Process = ExternalProcess.Start(apache, new[] { "-f", Dir.File("httpd.conf"), "-DFOREGROUND" });
        await Eventually.UntilAsync(() => Loopback.CanConnect(Port), TimeSpan.FromSeconds(15), "httpd listening; output: " + Process.Output);
    }

    /// <summary>Both members enabled (each test starts from here).</summary>
    public async Task ResetAsync()
    {
        using var lb = LoadBalancerFactory.Create(Describe());
        foreach (var m in await lb.GetMembersAsync(CancellationToken.None))
            if (m.State != MemberAdminState.Ready) await lb.SetStateAsync(m, MemberAdminState.Ready, CancellationToken.None);
    }


    public async Task DisposeAsync()
    {
        if (Process is not null) await Process.DisposeAsync();
        Node1.Dispose();
        Node2.Dispose();
        Dir.Dispose();
    }
}
