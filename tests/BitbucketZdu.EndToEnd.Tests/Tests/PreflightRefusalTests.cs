using System.Collections;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>One cluster for the refusals: each must leave it exactly as it was, which the next case then relies on.</summary>
public sealed class SharedLab : IAsyncLifetime
{
    public E2eLab Lab { get; private set; } = null!;
    public async Task InitializeAsync() => Lab = await E2eLab.StartAsync(null);
    public async Task DisposeAsync() => await Lab.DisposeAsync();
}

/// <summary>Faults preflight must catch: the run is refused before anything changes, with an ErrorId and what to fix.</summary>
public sealed class PreflightRefusalTests : IClassFixture<SharedLab>
{
    private readonly E2eLab _lab;

    public PreflightRefusalTests(SharedLab shared, ITestOutputHelper output)
    {
        _lab = shared.Lab;
        _lab.Output = output;
    }

    [Fact]
    public Task Load_balancer_admin_socket_unreachable_is_refused_before_any_change() =>
        RefusedAsync("load balancer admin socket unreachable (preflight)", p =>
        {
            var lb = (Hashtable)((object[])p["LoadBalancers"]!)[0];
            ((Hashtable)lb["Settings"]!)["Endpoint"] = $"tcp://127.0.0.1:{FreePort.Next()}";
        }, "lb1");

    [Fact]
    public Task Member_missing_from_the_load_balancer_is_refused_before_any_change() =>
        RefusedAsync("member missing in the load balancer", p =>
        {
            var node = (Hashtable)((object[])p["Nodes"]!)[1];
            if (node["Members"] is Hashtable members) members["lb1"] = "node-9"; else node["Member"] = "node-9";
        }, "node-9");

    [Fact]
    public Task Archive_checksum_mismatch_is_refused_before_any_change() =>
        RefusedAsync("archive checksum mismatch", p => ((Hashtable)p["Archive"]!)["Sha256"] = new string('0', 64), "checksum|SHA-?256");

    private async Task RefusedAsync(string @case, Action<Hashtable> spoil, string named)
    {
        var before = _lab.Load.Total;
        var profile = _lab.Profile();
        spoil(profile);
        var run = await _lab.InvokeRollingUpgradeAsync(profile: profile);
        _lab.Print(@case, run);

        Assert.NotNull(run.ErrorId);
        Assert.Matches("(?i)" + named, run.ErrorMessage);
        // Nothing changed: upgrade mode off, every node on the old version and in rotation, no change in the journal.
        await _lab.AssertClusterOnAsync("8.19.3");
        await _lab.AssertAllInRotationAsync();
        var changes = File.Exists(_lab.JournalFile) ? (await _lab.JournalAsync()).Where(e => e.Kind == JournalKinds.StepBegin).ToList() : new();
        Assert.True(changes.Count == 0, "preflight refused, yet the journal records changes: " + string.Join(", ", changes.Select(c => c.Step)));
        Assert.True(_lab.Load.Failed == 0, $"{_lab.Load.Failed} user requests failed: {_lab.Load.FailureSummary}");
        Assert.True(_lab.Load.Total > before, "no user traffic during the case");
        _lab.Record(@case, "refused in preflight; nothing changed", run.ErrorId, run.ErrorMessage);
    }
}
