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
    public static async Task<IFront> StartAsync(FrontKind kind, string dir, IReadOnlyList<SimNode> nodes)
    {
        if (kind == FrontKind.Apache) return await ApacheFront.StartAsync(dir, nodes);
        // No BIG-IP or ELB runs here: their stubs have a data plane that routes users by the stub's member states, so
        // the drain the upgrade asks the stub for is the one users see. NGINX Plus and Application Gateway stubs have
        // none: users go through HAProxy (health-checked on /status) while the upgrade drives the stub's API.
        return kind switch
        {
            FrontKind.F5BigIp => StubFront.F5(nodes),
            FrontKind.AwsElb => StubFront.Elb(nodes),
            FrontKind.NginxPlus => StubFront.NginxPlus(await HAProxyFront.StartAsync(dir, nodes, new FrontOptions())),
            FrontKind.AzureAppGateway => StubFront.Azure(await HAProxyFront.StartAsync(dir, nodes, new FrontOptions())),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    internal static PSCredential Credential(string user) => new(user, Canary.Secure(Canary.Password));
}

/// <summary>
/// A stub kind's control API. F5 and ELB: members are the nodes' own addresses and users go through the stub's data
/// plane. NGINX Plus and Azure: two members, 10.0.0.11 and 10.0.0.12, for node-1 and node-2, users through HAProxy.
/// </summary>
public sealed class StubFront : IKindFront
{
    private readonly IAsyncDisposable? _traffic;
    private readonly IDisposable _stub;
    private readonly Hashtable _entry;
    private readonly Func<SimNode, string> _member;
    private readonly Action<string> _check;

    private StubFront(Uri frontend, bool real, IAsyncDisposable? traffic, IDisposable stub, string kind, Hashtable settings, Func<SimNode, string> member,
        PSCredential credential, Action<string> check)
    {
        Frontend = frontend;
        Real = real;
        _traffic = traffic;
        _stub = stub;
        _entry = new Hashtable { ["Name"] = "lb1", ["Kind"] = kind, ["Settings"] = settings };
        _member = member;
        Credential = credential;
        _check = check;
    }

    private static string Ip(SimNode n) => "10.0.0." + (10 + int.Parse(n.Name.Split('-').Last(), System.Globalization.CultureInfo.InvariantCulture));

    public static StubFront NginxPlus(IFront traffic)
    {
        var stub = new NginxPlusStub { BasicAuth = "lbadmin:" + Canary.Password };
        return new StubFront(traffic.Frontend, false, traffic, stub, "NginxPlus", new Hashtable { ["Endpoint"] = stub.ApiBase, ["Backend"] = "bitbucket", ["TimeoutSec"] = 10 },
            n => Ip(n) + ":7990", KindFronts.Credential("lbadmin"),
            m => Assert.True(stub.Patches.Any(p => p.Contains("drain", StringComparison.Ordinal)) && stub.Patches.Count >= 2, "NGINX Plus patches: " + string.Join(" | ", stub.Patches)));
    }

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
                $"{m} went out of and back into bb-pool: " + string.Join(" | ", stub.Log.Where(l => !l.StartsWith("GET", StringComparison.Ordinal)))));
    }

    private static string Address(SimNode n) => $"127.0.0.1:{n.Port}";

    public static StubFront Elb(IReadOnlyList<SimNode> nodes)
    {
        var stub = new ElbStub(Canary.Password, nodes.Select(Address).ToArray()) { DeregistrationDelay = TimeSpan.FromSeconds(1) };
        var plane = stub.StartDataPlane();
        var settings = new Hashtable
        {
            ["Endpoint"] = ElbStub.Region, ["Backend"] = stub.TargetGroupArn, ["EndpointUrl"] = stub.Url, ["CliPath"] = AwsCli.Isolated, ["TimeoutSec"] = 10,
            ["Targets"] = string.Join(", ", nodes.Select(Address)),
        };
        return new StubFront(plane.Frontend, true, new Disposer(plane), stub, "AwsElb", settings, Address, KindFronts.Credential(ElbStub.AccessKeyId),
            m => Assert.True(stub.Get(m)?.State == "healthy" && stub.Calls.Count(c => c == "DeregisterTargets") >= 2 && stub.Calls.Count(c => c == "RegisterTargets") >= 2,
                $"{m} is {stub.Get(m)?.State}; calls: " + string.Join(",", stub.Calls.Where(c => c != "DescribeTargetHealth"))));
    }

    public static StubFront F5(IReadOnlyList<SimNode> nodes)
    {
        var stub = new F5Stub { MonitorDownReads = 1 };
        var plane = F5DataPlane.Start(stub, nodes.Select(Address).ToArray());
        return new StubFront(plane.Frontend, true, new Disposer(plane), stub, "F5BigIp", new Hashtable { ["Endpoint"] = stub.Url, ["Backend"] = "/Common/bitbucket", ["TimeoutSec"] = 10 },
            Address, KindFronts.Credential("f5ops"),
            m => Assert.True(stub.Patches.Contains(m + " {\"session\":\"user-disabled\",\"state\":\"user-down\"}") && stub.Patches.Contains(m + " {\"session\":\"user-enabled\",\"state\":\"user-up\"}"),
                "BIG-IP patches: " + string.Join(" | ", stub.Patches)));
    }

    private sealed class Disposer : IAsyncDisposable
    {
        private readonly IDisposable _inner;
        public Disposer(IDisposable inner) => _inner = inner;
        public ValueTask DisposeAsync()
        {
            _inner.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    public Uri Frontend { get; }
    /// <summary>True when users go through the stub's own data plane (its member states decide where requests go).</summary>
    public bool Real { get; }
    public PSCredential? Credential { get; }
    public Hashtable ProfileEntry() => _entry;
    public string MemberOf(SimNode node) => _member(node);
    public void AssertWentOutAndBack(string member) => _check(member);

    public async ValueTask DisposeAsync()
    {
        if (_traffic is not null) await _traffic.DisposeAsync();
        _stub.Dispose();
    }
}

/// <summary>Apache httpd in front of the nodes (balancer://bitbucket), its balancer-manager behind HTTP Basic.</summary>
public sealed class ApacheFront : IKindFront
{
    private const string Modules = "/usr/lib/apache2/modules";
    private readonly ExternalProcess _process;
    private readonly int _port;

    private ApacheFront(ExternalProcess process, int port)
    {
        _process = process;
        _port = port;
    }

    public static async Task<IFront> StartAsync(string dir, IReadOnlyList<SimNode> nodes)
    {
        var apache = RequiredTool.Find("apache2");
        var port = FreePort.Next();
        var mods = new[] { "mpm_event", "authz_core", "authz_host", "slotmem_shm", "proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "status",
            "auth_basic", "authn_core", "authn_file", "authz_user" };
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
<Proxy balancer://bitbucket>
{string.Join("\n", nodes.Select(n => $"    BalancerMember http://127.0.0.1:{n.Port} connectiontimeout=1 retry=1"))}
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
        return new ApacheFront(process, port);
    }

    public Uri Frontend => new($"http://127.0.0.1:{_port}/");
    public bool Real => true;
    public PSCredential? Credential => KindFronts.Credential("lbadmin");
    public Hashtable ProfileEntry() => new()
    {
        ["Name"] = "lb1", ["Kind"] = "Apache",
        ["Settings"] = new Hashtable { ["Endpoint"] = $"http://127.0.0.1:{_port}/balancer-manager", ["Backend"] = "bitbucket", ["TimeoutSec"] = 10 },
    };
    public string MemberOf(SimNode node) => $"http://127.0.0.1:{node.Port}";
    public void AssertWentOutAndBack(string member) { }
    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
