using System.Collections;
using System.Management.Automation;
using System.Runtime.CompilerServices;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

public sealed class LabOptions
{
    public FrontKind Front { get; init; } = FrontKind.HAProxy;
    public int Nodes { get; init; } = 3;
    public string From { get; init; } = "8.19.3";
    public string To { get; init; } = "8.19.4";
    /// <summary>Runs with the cluster root (not yet created by bbsim) before the cluster starts: e.g. mount a small disk under a node.</summary>
    public Func<string, Task>? BeforeCluster { get; init; }
    /// <summary>
    /// Production-shaped by default: every node has a git-over-SSH port, the load balancer an HTTP and an SSH backend
    /// (each node a member of both), and the users clone over HTTP and SSH besides their web GETs. <c>Simple</c> = the
    /// old root-path, HTTP-only cluster with web GETs only.
    /// </summary>
    public bool Simple { get; init; }
    /// <summary>
    /// server.context-path of the nodes ("" = root); the front health-checks &lt;context&gt;/status. "/bitbucket" by
    /// default, as production clusters behind a shared host name are set up; a test that needs the root says why.
    /// </summary>
    public string ContextPath { get; init; } = "/bitbucket";
    /// <summary>
    /// HTTPS on the nodes and on the front, with a test CA the lab makes (<see cref="E2eLab.CaFile"/>); on by default
    /// (production clusters use TLS with an internal CA), ignored when <see cref="Simple"/>.
    /// </summary>
    public bool Https { get; init; } = true;
    /// <summary>Node ids kept across restarts (Bitbucket's may or may not be; zdu-api.md §11).</summary>
    public bool StableIds { get; init; }
    /// <summary>Clone loops over HTTP and over SSH (when not Simple).</summary>
    public int HttpClones { get; init; } = 2;
    public int SshClones { get; init; } = 2;
    /// <summary>How long a clone streams (bbsim --git-duration); null = the simulated cluster's default (1.5 s). Shorter keeps a drain's wait for clones in flight short.</summary>
    public string? GitDuration { get; init; }
}

/// <summary>
/// THE end-to-end fixture: a simulated cluster (real node processes) on free ports in a temp folder, a real load balancer
/// in front, steady user traffic through it, the cluster profile and its journal folder, the module (in-process or in
/// a child pwsh) and the engine with its real adapters. Every process it started is stopped on dispose.
/// </summary>
public sealed class E2eLab : IAsyncDisposable
{
    private ModuleSession? _module;

    private E2eLab(ITestOutputHelper? output, LabOptions options, string dir, SimulatedCluster cluster, IFront front, string archive, string sha,
        System.Security.Cryptography.X509Certificates.X509Certificate2? ca)
    {
        Ca = ca;
        Output = output;
        Options = options;
        Dir = dir;
        Cluster = cluster;
        Front = front;
        ArchivePath = archive;
        ArchiveSha256 = sha;
        Load = new UserLoad(front.Frontend, httpClones: options.Simple ? 0 : options.HttpClones, ssh: front.SshFrontend,
            sshClones: options.Simple ? 0 : options.SshClones, trustedCa: Ca);
    }

    /// <summary>The test CA that signed the nodes' and the front's certificates (HTTPS labs), and its PEM file.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? Ca { get; }
    public string? CaFile => Ca is null ? null : Path.Combine(Dir, "ca.pem");

    /// <summary>A CA, and a localhost/127.0.0.1 certificate it signed: ca.pem, node.pem + node.key, front.pem (cert + key, for HAProxy).</summary>
    private static System.Security.Cryptography.X509Certificates.X509Certificate2 MakeCertificates(string dir) =>
        BitbucketZdu.Simulator.Tls.SimCertificates.WriteSet(dir, "BitbucketZdu E2E Test CA").Ca;

    /// <summary>Where figures are printed: the current test's output (a class-fixture lab is shared by several tests).</summary>
    public ITestOutputHelper? Output { get; set; }
    public LabOptions Options { get; }
    public string Dir { get; }
    public SimulatedCluster Cluster { get; }
    public IFront Front { get; }
    public UserLoad Load { get; }
    public string ArchivePath { get; }
    public string ArchiveSha256 { get; }
    public string JournalDir => Path.Combine(Dir, "journal");
    public string ProfilePath => Path.Combine(Dir, "profile.psd1");
    public const string ClusterName = "e2e";
    public IEnumerable<string> NodeNames => Cluster.Nodes.Select(n => n.Name);

    public static async Task<E2eLab> StartAsync(ITestOutputHelper? output, LabOptions? options = null)
    {
        options ??= new LabOptions();
        var dir = Directory.CreateTempSubdirectory("bbzdu-e2e-").FullName;
        var dist = SimulatedCluster.DistAsync(options.To);
        SimulatedCluster? cluster = null;
        IFront? front = null;
        try
        {
            if (options.BeforeCluster is not null) await options.BeforeCluster(Path.Combine(dir, "cluster"));
            var ca = options.Https && !options.Simple ? MakeCertificates(dir) : null;
            var shape = options.Simple ? new ClusterShape { Ssh = false } : new ClusterShape
            {
                ContextPath = options.ContextPath,
                TlsCertificate = ca is null ? null : Path.Combine(dir, "node.pem"),
                TlsKey = ca is null ? null : Path.Combine(dir, "node.key"),
                StableIds = options.StableIds,
                GitDuration = options.GitDuration ?? new ClusterShape().GitDuration,
            };
            cluster = await SimulatedCluster.StartAsync(Path.Combine(dir, "cluster"), options.Nodes, options.From, shape);
            var (archive, sha) = await dist;
            front = await Lab.Front.StartAsync(options.Front, dir, cluster.Nodes, new FrontOptions
            {
                ContextPath = shape.ContextPath,
                NodeCaFile = ca is null ? null : Path.Combine(dir, "ca.pem"),
                FrontPemFile = ca is null ? null : Path.Combine(dir, "front.pem"),
            });
            var lab = new E2eLab(output, options, dir, cluster, front, archive, sha, ca);
            await Eventually.UntilAsync(() => lab.Load.Total - lab.Load.Failed > 0, TimeSpan.FromSeconds(20), $"{options.Front} serving users at {front.Frontend}");
            await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames);
            return lab;
        }
        catch
        {
            if (front is not null) await front.DisposeAsync();
            if (cluster is not null) await cluster.DisposeAsync();
            throw;
        }
    }

    public SimNode Node(string name) => Cluster.Nodes.Single(n => n.Name == name);

    /// <summary>The cluster profile as a user writes it (Remoting 'local' unless <paramref name="remoting"/> says otherwise).</summary>
    public Hashtable Profile(Func<SimNode, string>? remoting = null) => new Hashtable()
    {
        ["Name"] = ClusterName,
        ["BaseUrl"] = Front.Frontend.ToString(),
        ["TargetVersion"] = Options.To,
        ["Archive"] = new Hashtable { ["Path"] = ArchivePath, ["Sha256"] = ArchiveSha256 },
        ["MinFreeDiskGB"] = 0.05,
        ["JournalPath"] = JournalDir,
        ["LoadBalancers"] = Front.ProfileEntries(),
        ["Nodes"] = Cluster.Nodes.Select(n => (object)new Hashtable
        {
            ["Name"] = n.Name, ["Url"] = n.Url.ToString(), ["Remoting"] = remoting?.Invoke(n) ?? "local",
            ["InstallRoot"] = n.InstallRoot, ["Service"] = "Script",
        }.With(Front.ProfileEntries().Length == 1 ? "Member" : "Members", Front.ProfileEntries().Length == 1 ? Front.MemberOf(n) : Front.MembersOf(n))).ToArray(),
        ["Timeouts"] = new Hashtable
        {
            ["DrainSeconds"] = 10, ["StopSeconds"] = 15, ["OfflineSeconds"] = 15, ["StartSeconds"] = 30, ["HealthySeconds"] = 20,
            ["StableSeconds"] = 30, ["MaxPollMilliseconds"] = 250,
        },
    }.WithIfSet("Tls", CaFile is null ? null : new Hashtable { ["TrustedCertificatePath"] = CaFile });

    public string WriteProfile(Hashtable? profile = null)
    {
        File.WriteAllText(ProfilePath, Psd1.Write(profile ?? Profile()));
        return ProfilePath;
    }

    public static PSCredential Credential => new(Canary.UserName, Canary.Secure(Canary.Password));
    public static ZduCredential ApiCredential => ZduCredential.Basic(Canary.UserName, Canary.Secure(Canary.Password));

    /// <summary>Invoke-BbRollingUpgrade in this process, as an admin runs it: -ProfilePath, -Credential, -Confirm:$false.</summary>
    /// <param name="hook">Called on the pipeline thread at every phase (phase, node) through -Hook @{ '*' = ... }: where a test strikes.</param>
    /// <param name="credential">Another credential than the canary sysadmin's (e.g. after its password changed).</param>
    public Task<UpgradeRun> InvokeRollingUpgradeAsync(string extraParameters = "", Hashtable? profile = null, Action<string, string?>? hook = null,
        ModuleSession? session = null, PSCredential? credential = null)
    {
        var path = WriteProfile(profile);
        session ??= _module ??= new ModuleSession();
        var hookParameter = hook is null ? "" : "-Hook @{ '*' = { $bbHook.Invoke([string]$_.Phase, [string]$_.Node) } }";
        return session.RunAsync($"Invoke-BbRollingUpgrade -ProfilePath $bbProfile -Credential $bbCredential -Confirm:$false -Verbose {hookParameter} {extraParameters}",
            new Dictionary<string, object?> { ["bbProfile"] = path, ["bbCredential"] = credential ?? Credential, ["bbHook"] = hook });
    }

    /// <summary>A hook that acts once, at the first node to reach <paramref name="phase"/>; returns that node's name through <paramref name="struck"/>.</summary>
    public static Action<string, string?> Once(string phase, Action<string> action, StrongBox<string?> struck) => (p, node) =>
    {
        if (p != phase || node is null || struck.Value is not null) return;
        struck.Value = node;
        action(node);
    };

    /// <summary>The engine with its real adapters (cluster API, load-balancer rotation, node steps over <paramref name="openShell"/>, file journal).</summary>
    public async Task<UpgradeRun> RunEngineAsync(Hashtable profileData, Func<NodeProfile, CancellationToken, Task<INodeShell>> openShell, bool resume = false,
        UpgradeHook? hook = null)
    {
        var profile = ClusterProfileReader.Read(profileData, WriteProfile(profileData));
        var clients = new List<ZduClient>();
        ZduClient Client(Uri url)
        {
            lock (clients)
            {
                var c = ApiClient(url);
                clients.Add(c);
                return c;
            }
        }
        var perNode = new System.Collections.Concurrent.ConcurrentDictionary<string, IZduClient>();
        using var rotation = new LoadBalancerRotation(profile);
        // The /status probe trusts the lab's CA as the cmdlets' port factory makes it do with the profile's Tls.
        using var nodes = new NodeStepsHost(profile, openShell, transport: new ZduTransport { TrustedCertificatePath = CaFile });
        using var ports = new UpgradePorts(Client(profile.BaseUrl), n => perNode.GetOrAdd(n.Name, _ => Client(n.Url)), rotation, nodes,
            new FileJournalStore(JournalDir), UpgradeClock.System);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var result = await new RollingUpgradeRunner(ports, NullOperationHost.Instance).RunAsync(profile, new RollingUpgradeOptions { Resume = resume, Hook = hook }, CancellationToken.None);
            return new UpgradeRun(result.Report, null, null, result.Report?.Summary ?? "", sw.Elapsed);
        }
        catch (UpgradeHaltedException halted)
        {
            return new UpgradeRun(halted.Report, halted.ErrorId, halted.Message, halted.ToString(), sw.Elapsed);
        }
        catch (BitbucketZdu.Core.BbException ex)
        {
            return new UpgradeRun(null, ex.ErrorId, ex.Message, ex.ToString(), sw.Elapsed);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    public async Task<ZduCluster> ClusterStateAsync()
    {
        using var api = ApiClient(Cluster.Nodes[0].Url);
        return await api.GetClusterAsync();
    }

    /// <summary>The module's API client for <paramref name="url"/> (a node or the front), trusting the lab's CA.</summary>
    public ZduClient ApiClient(Uri url, ZduCredential? credential = null) =>
        new(new ZduClientOptions(url, credential ?? ApiCredential) { TrustedCertificatePath = CaFile });

    /// <summary>A plain HTTP client for the nodes' and the front's URLs (e.g. /bbsim/node), trusting the lab's CA as the users' load does.</summary>
    public HttpClient Http(TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler { UseCookies = false };
        if (Ca is { } ca) handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => UserLoad.TrustedBy(ca, cert);
        return new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>Upgrade mode off, STABLE, every node ACTIVE on <paramref name="version"/>.</summary>
    public async Task AssertClusterOnAsync(string version)
    {
        var cluster = await Eventually.ValueAsync(ClusterStateAsync, c => c.State == ClusterState.STABLE && c.Nodes.Count == Options.Nodes
            && c.Nodes.All(n => n.State == NodeState.ACTIVE && n.Version == version), TimeSpan.FromSeconds(20), $"cluster STABLE with every node ACTIVE on {version}");
        Assert.False(cluster.UpgradeModeEnabled);
    }

    /// <summary>No node left out of rotation: the load balancer says every member is in, and users reach every node.</summary>
    public async Task AssertAllInRotationAsync()
    {
        var profile = ClusterProfileReader.Read(Profile(), ProfilePath);
        using var rotation = new LoadBalancerRotation(profile);
        foreach (var node in profile.Nodes)
            Assert.Equal(RotationState.InRotation, await rotation.GetStateAsync(node, CancellationToken.None));
        await Load.AssertEveryNodeServesAsync(NodeNames);
    }

    public async Task<IReadOnlyList<JournalEntry>> JournalAsync() =>
        await new FileJournalStore(JournalDir).ReadAsync(ClusterName, CancellationToken.None);

    public string JournalFile => new FileJournalStore(JournalDir).JournalFile(ClusterName);

    /// <summary>Prints the run's figures: requests, failures, and each node's out-of-rotation window against its stop + start.</summary>
    public void Print(string title, UpgradeRun run)
    {
        Output?.WriteLine($"{title}: {(run.ErrorId is null ? "ok" : run.ErrorId)} in {run.Elapsed.TotalSeconds:0.0} s; user requests {Load.Total}, failed {Load.Failed} {Load.FailureSummary}, sent again on a fresh connection {Load.Retried}");
        if (!Options.Simple) Output?.WriteLine($"  {Load.Figures} {Load.GitFailureSummary}");
        Output?.WriteLine("  served: " + string.Join(", ", Load.PerNode.OrderBy(kv => kv.Key).Select(kv => kv.Key + "=" + kv.Value)));
        if (run.Report is UpgradeReport r)
        {
            Output?.WriteLine("  " + r.Summary);
            foreach (var n in r.Nodes)
                Output?.WriteLine($"  {n.Order}. {n.Name} {n.Outcome} {n.FromVersion}->{n.ToVersion}: out of rotation {Sec(n.OutOfRotation)} (drain {Sec(n.DrainTime)}, stop {Sec(n.StopTime)}, install {Sec(n.InstallTime)}, start {Sec(n.StartTime)}, put back {Sec(n.PutBackTime)}, overhead {Sec(n.Overhead)}){(n.Error is null ? "" : " error: " + n.Error)}");
        }
        if (run.ErrorMessage is not null) Output?.WriteLine("  error: " + run.ErrorMessage);
        Canary.AssertAbsent(run.AllText, title + " output");
    }

    private static string Sec(TimeSpan? t) => t is null ? "-" : $"{t.Value.TotalSeconds:0.00} s";

    /// <summary>Records this case in out/reliability/fault-matrix.json with the traffic figures so far.</summary>
    public void Record(string @case, string outcome, string? errorId, string? note = null) =>
        FaultMatrix.Record(new FaultOutcome(@case, outcome, errorId, Load.Total, Load.Failed, note));

    public async ValueTask DisposeAsync()
    {
        await Load.DisposeAsync();
        _module?.Dispose();
        await Front.DisposeAsync();
        await Cluster.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class HashtableExtensions
{
    public static Hashtable With(this Hashtable table, string key, object value)
    {
        table[key] = value;
        return table;
    }

    /// <summary>Sets the key only when there is a value: a profile leaves out a setting it does not need.</summary>
    public static Hashtable WithIfSet(this Hashtable table, string key, object? value) => value is null ? table : table.With(key, value);
}
