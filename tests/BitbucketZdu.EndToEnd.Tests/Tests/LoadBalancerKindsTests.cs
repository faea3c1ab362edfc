using System.Collections;
using System.Collections.Concurrent;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Every load-balancer kind is usable from a cluster profile: Invoke-BbRollingUpgrade -ProfilePath upgrades the
/// production-shaped simulated cluster (context path /bitbucket, HTTPS with the lab's CA, web GETs and git clones over
/// HTTP and SSH) through it, the kinds that need a credential getting it by load-balancer name
/// (-LoadBalancerCredential), never from the profile, and never showing it. Where the kind carries SSH (HAProxy tcp
/// backend, NGINX stream upstream, an F5 pool) each node is a member of its HTTP and its SSH backend, and the load
/// balancer itself must show the node out of every backend once the upgrade says it is out of rotation, and back in
/// every one once it says the node is upgraded. Where users go through the kind (HAProxy, NGINX, Apache; the F5 and ELB
/// stubs' data planes, which route by the stub's member states) no web request and no clone may fail. The NGINX Plus
/// and Application Gateway stubs have no data plane (users go through HAProxy's health checks). Every stub must have
/// seen every node go out and come back. Where no load balancer of the profile drains SSH (Apache, NGINX Plus whose
/// stream upstreams the module does not drive), the run warns PreflightSshNotDrained.
/// </summary>
public sealed class LoadBalancerKindsTests
{
    private readonly ITestOutputHelper _output;

    public LoadBalancerKindsTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(FrontKind.HAProxy, 2)]
    [InlineData(FrontKind.Nginx, 2)]
    [InlineData(FrontKind.NginxPlus, 1)]
    [InlineData(FrontKind.Apache, 1)]
    [InlineData(FrontKind.AzureAppGateway, 1)]
    [InlineData(FrontKind.AwsElb, 1)]
    [InlineData(FrontKind.F5BigIp, 2)]
    public async Task A_profile_driven_upgrade_completes_through_the_kind(FrontKind kind, int backends)
    {
        // Two nodes: each stub has two members, and seven upgrades must fit the suite's budget. One clone loop of each
        // kind, each clone 400 ms (a drain waits for the clones in flight; the default two loops of 1.5 s clones would
        // make every drain and stop longer without proving more). No clones where users go around the kind (NGINX Plus
        // and Azure stubs: HAProxy carries them and nothing about the kind is learnt from them).
        var around = kind is FrontKind.NginxPlus or FrontKind.AzureAppGateway;
        await using var lab = await E2eLab.StartAsync(_output, new LabOptions
        {
            Front = kind, Nodes = 2, HttpClones = around ? 0 : 1, SshClones = around ? 0 : 1, GitDuration = "400ms",
        });
        var front = lab.Front as IKindFront;
        var profilePath = lab.WriteProfile();
        Canary.AssertAbsent(File.ReadAllText(profilePath), "the profile");
        Assert.Equal(backends, lab.Front.ProfileEntries().Length);
        Assert.Equal("https", lab.Cluster.Nodes[0].Url.Scheme);
        Assert.EndsWith("/bitbucket/", lab.Front.Frontend.AbsolutePath);

        var lbCredential = new Hashtable();
        if (front?.Credential is { } credential)
            foreach (Hashtable entry in lab.Front.ProfileEntries()) lbCredential[(string)entry["Name"]!] = credential;

        // What the load balancer itself says at the upgrade's phases: out of every backend once the node is out of
        // rotation (the drain is over), in every backend once it is back.
        var seen = new ConcurrentQueue<(string Phase, string Node, IReadOnlyDictionary<string, bool>? States)>();
        void Hook(string phase, string? node)
        {
            if (node is null) return;
            if (phase == "NodeStarting") lab.Load.MarkDrain(node);
            if (phase is "NodeOutOfRotation" or "NodeUpgraded")
                seen.Enqueue((phase, node, lab.Front.InRotationAsync(lab.Node(node)).GetAwaiter().GetResult()));
        }
        using var session = new ModuleSession();
        var run = await session.RunAsync("Invoke-BbRollingUpgrade -ProfilePath $bbProfile -Credential $bbCredential -LoadBalancerCredential $bbLb "
            + "-Hook @{ '*' = { $bbHook.Invoke([string]$_.Phase, [string]$_.Node) } } -Confirm:$false -Verbose",
            new Dictionary<string, object?> { ["bbProfile"] = profilePath, ["bbCredential"] = E2eLab.Credential, ["bbLb"] = lbCredential, ["bbHook"] = (Action<string, string?>)Hook });
        await lab.Load.StopAsync();
        lab.Print($"profile-driven upgrade through {kind} ({backends} backend(s) per node)", run); // also asserts no secret in the run's output
        foreach (var (phase, node, states) in seen)
            _output.WriteLine($"  {phase} {node}: " + (states is null ? "(not readable)" : string.Join(", ", states.Select(s => $"{s.Key}={(s.Value ? "in" : "out")}"))));

        Assert.True(run.Succeeded, run.ErrorMessage);
        Assert.Equal(2, run.Report!.NodesUpgraded);
        Assert.All(run.Report.Nodes, n => Assert.Equal(NodeOutcome.Upgraded, n.Outcome));
        await lab.AssertClusterOnAsync("8.19.4");
        foreach (var node in lab.Cluster.Nodes) front?.AssertWentOutAndBack(lab.Front.MemberOf(node));
        foreach (var file in Directory.EnumerateFiles(lab.JournalDir, "*", SearchOption.AllDirectories))
            Canary.AssertAbsent(File.ReadAllText(file), "the journal " + Path.GetFileName(file));

        // Every backend the node is in: out when the upgrade says it is out of rotation, in when it says it is back.
        foreach (var node in lab.NodeNames)
            foreach (var (phase, expectIn) in new[] { ("NodeOutOfRotation", false), ("NodeUpgraded", true) })
            {
                var (_, _, states) = Assert.Single(seen, s => s.Phase == phase && s.Node == node);
                Assert.NotNull(states);
                Assert.Equal(backends, states!.Count);
                Assert.True(states.Values.All(v => v == expectIn), $"{phase} {node}: {string.Join(", ", states.Select(s => s.Key + "=" + s.Value))}");
            }

        // PreflightSshNotDrained's message (warnings are in the run's text).
        var sshWarned = run.AllText.Contains("is NOT drained before a node stops", StringComparison.Ordinal);
        Assert.True(sshWarned == kind is FrontKind.Apache or FrontKind.NginxPlus, $"SSH-not-drained warning {(sshWarned ? "given" : "missing")} for {kind}");

        if (front?.Real != false)
        {
            var load = lab.Load;
            Assert.True(load.Failed == 0, $"{load.Failed} of {load.Total} web requests failed through {kind}: {load.FailureSummary}");
            Assert.True(load.GitFailed(UserLoad.GitKind.Http) == 0, "git over HTTP failed: " + load.GitFailureSummary);
            Assert.True(load.GitTotal(UserLoad.GitKind.Http) > 0, "no clone over HTTP ran: " + load.Figures);
            if (backends == 2)
            {
                Assert.True(load.GitFailed(UserLoad.GitKind.Ssh) == 0, "git over SSH failed: " + load.GitFailureSummary);
                Assert.True(load.GitTotal(UserLoad.GitKind.Ssh) > 0, "no clone over SSH ran: " + load.Figures);
            }
            Assert.Equal(load.InFlightAtDrain, load.InFlightAtDrainCompleted);
        }
    }
}
