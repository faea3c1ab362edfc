using System.Collections;
using System.Management.Automation;
using BitbucketZdu.LoadBalancers.Tests.AwsElb;
using BitbucketZdu.LoadBalancers.Tests.AzureAppGateway;
using BitbucketZdu.LoadBalancers.Tests.F5BigIp;
using BitbucketZdu.LoadBalancers.Tests.NginxPlus;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// A front for a load-balancer kind that needs a credential: what the profile names, the credential the upgrade is
/// given by load-balancer name (-LoadBalancerCredential), and, for a stub, proof that every member went out and back
/// through the stub's API.
/// </summary>
public interface IKindFront : IFront
{
    /// <summary>True when users go through the kind itself or its stub's data plane, so no user request may fail; false when they go around the stub.</summary>
    bool Real { get; }
    PSCredential? Credential { get; }
    /// <summary>Fails unless the kind's API saw <paramref name="member"/> taken out and put back.</summary>
    void AssertWentOutAndBack(string member);
}

public static class KindFronts
{
    public static async Task<IFront> StartAsync(FrontKind kind, string dir, IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        if (kind == FrontKind.Apache) return await ApacheFront.StartAsync(dir, nodes, options);
        // No BIG-IP or ELB runs here: their stubs have a data plane that routes users by the stub's member states, so
        // the drain the upgrade asks the stub for is the one users see. NGINX Plus and Application Gateway stubs have
        // none: users go through HAProxy (health-checked on /status, with its SSH backend) while the upgrade drives the stub's API.
        return kind switch
        {
            FrontKind.F5BigIp => StubFront.F5(nodes, options),
            FrontKind.AwsElb => StubFront.Elb(nodes, options),
            FrontKind.NginxPlus => StubFront.NginxPlus(await HAProxyFront.StartAsync(dir, nodes, options)),
            FrontKind.AzureAppGateway => StubFront.Azure(await HAProxyFront.StartAsync(dir, nodes, options)),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    internal static PSCredential Credential(string user) => new(user, Canary.Secure(Canary.Password));
}

/// <summary>
/// A stub kind's control API. F5 and ELB: members are the nodes' own addresses and users go through the stub's data
/// plane (F5: an HTTP pool and an SSH pool, each node a member of both). NGINX Plus and Azure: two members, 10.0.0.11
/// and 10.0.0.12, for node-1 and node-2, users through HAProxy (HTTP and SSH).
/// </summary>
public sealed class StubFront : IKindFront
{
    private readonly IAsyncDisposable? _traffic;
    private readonly IDisposable _stub;
    private readonly Hashtable _entry;
    private readonly Hashtable? _sshEntry;
    private readonly Func<SimNode, string> _member;
    private readonly Func<SimNode, string>? _sshMember;
    private readonly Action<string> _check;
    private readonly Func<SimNode, IReadOnlyDictionary<string, bool>> _inRotation;

    private StubFront(Uri frontend, bool real, IAsyncDisposable? traffic, IDisposable stub, string kind, Hashtable settings, Func<SimNode, string> member,
        PSCredential credential, Action<string> check, Func<SimNode, IReadOnlyDictionary<string, bool>> inRotation,
        System.Net.IPEndPoint? sshFrontend = null, Hashtable? sshSettings = null, Func<SimNode, string>? sshMember = null)
    {
        Frontend = frontend;
        Real = real;
        _traffic = traffic;
        _stub = stub;
        _entry = new Hashtable { ["Name"] = "lb1", ["Kind"] = kind, ["Settings"] = settings };
        _sshEntry = sshSettings is null ? null : new Hashtable { ["Name"] = "lb1-ssh", ["Kind"] = kind, ["Settings"] = sshSettings };
        _member = member;
        _sshMember = sshMember;
        Credential = credential;
        _check = check;
        _inRotation = inRotation;
        SshFrontend = sshFrontend ?? (traffic as IFront)?.SshFrontend;
    }

    private static string Ip(SimNode n) => "10.0.0." + (10 + int.Parse(n.Name.Split('-').Last(), System.Globalization.CultureInfo.InvariantCulture));

    public static StubFront NginxPlus(IFront traffic)
    {
        var stub = new NginxPlusStub { BasicAuth = "lbadmin:" + Canary.Password };
        return new StubFront(traffic.Frontend, false, traffic, stub, "NginxPlus", new Hashtable { ["Endpoint"] = stub.ApiBase, ["Backend"] = "bitbucket", ["TimeoutSec"] = 10 },
            n => Ip(n) + ":7990", KindFronts.Credential("lbadmin"),
            m => Assert.True(stub.Patches.Any(p => p.Contains("drain", StringComparison.Ordinal)) && stub.Patches.Count >= 2, "NGINX Plus patches: " + string.Join(" | ", stub.Patches)),
            n => new Dictionary<string, bool> { ["bitbucket"] = stub[Index(n)] is var p && !p.Drain && !p.Down });
    }

    private static int Index(SimNode n) => int.Parse(n.Name.Split('-').Last(), System.Globalization.CultureInfo.InvariantCulture) - 1;

    public static StubFront Azure(IFront traffic)
    {
        var stub = new ArmStub();
        var settings = new Hashtable
        {
            ["Endpoint"] = ArmStub.GatewayId, ["Backend"] = "bb-pool", ["Authentication"] = "ServicePrincipal", ["TenantId"] = "contoso-tenant",
            ["ManagementEndpoint"] = stub.BaseUri.ToString(), ["AuthorityEndpoint"] = stub.BaseUri.ToString(), ["TimeoutSec"] = 10,
        };
        return new StubFront(traffic.Frontend, false, traffic, stub, "AzureAppGateway", settings, Ip, KindFronts.Credential("app-1"),
            m => Assert.True(stub.Log.Count(l => l.StartsWith("PUT ", StringComparison.Ordinal)) >= 4 && stub.PoolAddresses().Contains(m),
                $"{m} went out of and back into bb-pool: " + string.Join(" | ", stub.Log.Where(l => !l.StartsWith("GET", StringComparison.Ordinal)))),
            n => new Dictionary<string, bool> { ["bb-pool"] = stub.PoolAddresses().Contains(Ip(n)) });
    }

    private static string Address(SimNode n) => $"127.0.0.1:{n.Port}";

    public static StubFront Elb(IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        var stub = new ElbStub(Canary.Password, nodes.Select(Address).ToArray()) { DeregistrationDelay = TimeSpan.FromSeconds(1) };
        var plane = stub.StartDataPlane();
        // The lab's options only: HTTPS to the nodes verified with the test CA (the ELB stub's own front stays HTTP).
        if (options.NodeCaFile is not null)
        {
            plane.BackendScheme = "https";
            plane.BackendCa = options.NodeCa();
        }
        var settings = new Hashtable
        {
            ["Endpoint"] = ElbStub.Region, ["Backend"] = stub.TargetGroupArn, ["EndpointUrl"] = stub.Url, ["CliPath"] = AwsCli.Isolated, ["TimeoutSec"] = 10,
            ["Targets"] = string.Join(", ", nodes.Select(Address)),
        };
        return new StubFront(new Uri(plane.Frontend, options.ContextPath.TrimStart('/') + (options.ContextPath.Length > 0 ? "/" : "")), true, new Disposer(plane), stub, "AwsElb", settings, Address, KindFronts.Credential(ElbStub.AccessKeyId),
            m => Assert.True(stub.Get(m)?.State == "healthy" && stub.Calls.Count(c => c == "DeregisterTargets") >= 2 && stub.Calls.Count(c => c == "RegisterTargets") >= 2,
                $"{m} is {stub.Get(m)?.State}; calls: " + string.Join(",", stub.Calls.Where(c => c != "DescribeTargetHealth"))),
            n => new Dictionary<string, bool> { [stub.TargetGroupArn] = stub.Get(Address(n))?.State == "healthy" });
    }

    private static string SshAddress(SimNode n) => $"127.0.0.1:{n.SshPort}";

    /// <summary>
    /// BIG-IP with two pools on one device: /Common/bitbucket (HTTP, its virtual server HTTPS to the nodes with the test
    /// CA) and /Common/bitbucket_ssh (git over SSH, a layer-4 virtual server), each node a member of both.
    /// </summary>
    public static StubFront F5(IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        var stub = new F5Stub { MonitorDownReads = 1 };
        var plane = F5DataPlane.Start(stub, options.FrontCertificate(), nodes.Select(Address).ToArray());
        plane.BackendScheme = options.NodeCaFile is null ? "http" : "https";
        plane.BackendCa = options.NodeCa();
        var ssh = nodes.All(n => n.SshPort > 0) ? F5DataPlane.StartTcp(stub, "bitbucket_ssh", nodes.Select(SshAddress).ToArray()) : null;
        Hashtable Settings(string pool) => new() { ["Endpoint"] = stub.Url, ["Backend"] = "/Common/" + pool, ["TimeoutSec"] = 10 };
        IReadOnlyDictionary<string, bool> InRotation(SimNode n)
        {
            lock (stub.Gate)
                return stub.Pools.Where(p => p.Value.Any(m => m.Name == Address(n) || ssh is not null && m.Name == SshAddress(n)))
                    .ToDictionary(p => p.Key, p => p.Value.Single(m => m.Name == Address(n) || m.Name == SshAddress(n)) is var m && m.Session != "user-disabled" && m.State == "up");
        }
        return new StubFront(new Uri(plane.Frontend, options.ContextPath.TrimStart('/') + (options.ContextPath.Length > 0 ? "/" : "")), true,
            new Disposer(plane, ssh), stub, "F5BigIp", Settings("bitbucket"), Address, KindFronts.Credential("f5ops"),
            m => Assert.True(stub.Patches.Contains(m + " {\"session\":\"user-disabled\",\"state\":\"user-down\"}") && stub.Patches.Contains(m + " {\"session\":\"user-enabled\",\"state\":\"user-up\"}"),
                "BIG-IP patches: " + string.Join(" | ", stub.Patches)),
            InRotation, ssh?.Frontend, ssh is null ? null : Settings("bitbucket_ssh"), ssh is null ? null : SshAddress);
    }

    private sealed class Disposer : IAsyncDisposable
    {
        private readonly IDisposable?[] _inner;
        public Disposer(params IDisposable?[] inner) => _inner = inner;
        public ValueTask DisposeAsync()
        {
            foreach (var d in _inner) d?.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    public Uri Frontend { get; }
    public System.Net.IPEndPoint? SshFrontend { get; }
    /// <summary>True when users go through the stub's own data plane (its member states decide where requests go).</summary>
    public bool Real { get; }
    public PSCredential? Credential { get; }
    public Hashtable ProfileEntry() => _entry;
    public object[] ProfileEntries() => _sshEntry is null ? new object[] { _entry } : new object[] { _entry, _sshEntry };
    public string MemberOf(SimNode node) => _member(node);
    public Hashtable MembersOf(SimNode node) => _sshMember is null ? new() { ["lb1"] = _member(node) } : new() { ["lb1"] = _member(node), ["lb1-ssh"] = _sshMember(node) };
    public void AssertWentOutAndBack(string member) => _check(member);
    public Task<IReadOnlyDictionary<string, bool>?> InRotationAsync(SimNode node) => Task.FromResult<IReadOnlyDictionary<string, bool>?>(_inRotation(node));

    public async ValueTask DisposeAsync()
    {
        if (_traffic is not null) await _traffic.DisposeAsync();
        _stub.Dispose();
    }
}

/// <summary>
/// Apache httpd in front of the nodes (balancer://bitbucket), its balancer-manager behind HTTP Basic. HTTPS to the nodes
/// verified with the test CA and the context path kept; its own front stays plain HTTP because the balancer-manager is
/// served on it and the module's Apache provider has no CA setting (a load balancer's TLS is checked against the
/// system's trust). mod_proxy_balancer carries HTTP only: no SSH backend (preflight warns PreflightSshNotDrained).
/// </summary>
public sealed class ApacheFront : IKindFront
{
    private const string Modules = "/usr/lib/apache2/modules";
    private readonly ExternalProcess _process;
    private readonly int _port;
    private readonly string _scheme;
    private readonly string _contextPath;

    private ApacheFront(ExternalProcess process, int port, string scheme, string contextPath)
    {
        _process = process;
        _port = port;
        _scheme = scheme;
        _contextPath = contextPath;
    }

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes, FrontOptions options)
    {
        var apache = RequiredTool.Find("apache2");
        var port = FreePort.Next();
        var scheme = options.NodeCaFile is null ? "http" : "https";
        var mods = new[] { "mpm_event", "authz_core", "authz_host", "slotmem_shm", "proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "status",
            "auth_basic", "authn_core", "authn_file", "authz_user" }.Concat(options.NodeCaFile is null ? Array.Empty<string>() : new[] { "socache_shmcb", "ssl" });
        // The chain is verified against the test CA; the peer name is not (mod_ssl 2.4 matches DNS names only, and the
        // members are addressed by IP as the profile names them).
        var nodeTls = options.NodeCaFile is null ? "" : $@"
SSLProxyEngine on
SSLProxyVerify require
SSLProxyVerifyDepth 2
SSLProxyCACertificateFile {options.NodeCaFile}
SSLProxyCheckPeerName off
SSLProxyCheckPeerExpire on
";
        File.WriteAllText(Path.Combine(dir, "htpasswd"), "lbadmin:{SHA}" + Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(Canary.Password))) + "\n");
        File.WriteAllText(Path.Combine(dir, "httpd.conf"), $@"
ServerRoot {dir}
PidFile {dir}/httpd.pid
DefaultRuntimeDir {dir}
Mutex file:{dir} default
ErrorLog {dir}/httpd-error.log
LogLevel warn
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
UseCanonicalName On
{string.Join("\n", mods.Select(m => $"LoadModule {m}_module {Modules}/mod_{m}.so"))}
KeepAliveTimeout 5
{nodeTls}
<Proxy balancer://bitbucket>
{string.Join("\n", nodes.Select(n => $"    BalancerMember {scheme}://127.0.0.1:{n.Port} connectiontimeout=1 retry=1"))}
</Proxy>
<Location /balancer-manager>
    SetHandler balancer-manager
    AuthType Basic
    AuthName ""balancer-manager""
    AuthBasicProvider file
    AuthUserFile {dir}/htpasswd
    Require valid-user
</Location>
ProxyPass /balancer-manager !
ProxyPass / balancer://bitbucket/
");
        var process = ExternalProcess.Start(apache, new[] { "-f", Path.Combine(dir, "httpd.conf"), "-DFOREGROUND" });
        await Front.WaitListeningAsync(process, port, "httpd");
        return new ApacheFront(process, port, scheme, options.ContextPath);
    }

    public Uri Frontend => new($"http://127.0.0.1:{_port}{_contextPath}/");
    public bool Real => true;
    public PSCredential? Credential => KindFronts.Credential("lbadmin");
    public Hashtable ProfileEntry() => new()
    {
        ["Name"] = "lb1", ["Kind"] = "Apache",
        ["Settings"] = new Hashtable { ["Endpoint"] = $"http://127.0.0.1:{_port}/balancer-manager", ["Backend"] = "bitbucket", ["TimeoutSec"] = 10 },
    };
    public string MemberOf(SimNode node) => $"{_scheme}://127.0.0.1:{node.Port}";
    public void AssertWentOutAndBack(string member) { }

    /// <summary>From the balancer-manager page: the member's status cell says "Ok" with no Dis(abled), Drn (draining), Stop or Err flag.</summary>
    public async Task<IReadOnlyDictionary<string, bool>?> InRotationAsync(SimNode node)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("lbadmin:" + Canary.Password)));
        var page = await http.GetStringAsync($"http://127.0.0.1:{_port}/balancer-manager");
        var member = MemberOf(node);
        var row = System.Text.RegularExpressions.Regex.Matches(page, "<tr>(.*?)</tr>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => m.Groups[1].Value).Single(r => r.Contains(">" + member + "<", StringComparison.Ordinal));
        var flags = System.Text.RegularExpressions.Regex.Matches(row, "<td>([^<]*)</td>").Select(m => m.Groups[1].Value).FirstOrDefault(c => c.Contains("Init", StringComparison.Ordinal)) ?? row;
        return new Dictionary<string, bool> { ["bitbucket"] = flags.Contains("Ok", StringComparison.Ordinal) && !new[] { "Dis", "Drn", "Stop", "Err" }.Any(f => flags.Contains(f, StringComparison.Ordinal)) };
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
