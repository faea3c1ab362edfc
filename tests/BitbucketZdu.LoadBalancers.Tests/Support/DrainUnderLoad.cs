using System.Diagnostics;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>
/// The zero-downtime proof shared by the real load balancers: under steady load, drain one member and take it out,
/// show it receives nothing more, put it back, show it receives traffic again; no request may fail.
/// </summary>
public static class DrainUnderLoad
{
    public static async Task<LoadBalancerChangeResult> RunAsync(string kind, LoadBalancerController controller, string member,
        Backend leaving, Backend staying, Uri frontend, ITestOutputHelper output, TimeSpan? drainTimeout = null)
    {
        var host = new TestHost();
        var options = new LoadBalancerOptions { DrainTimeout = drainTimeout ?? TimeSpan.FromSeconds(20), HealthTimeout = TimeSpan.FromSeconds(20), NodeName = member };
        leaving.SlowDelay = staying.SlowDelay = TimeSpan.FromMilliseconds(400);
        await using var load = new LoadGenerator(frontend, concurrency: 6, slowEvery: 10);
        await Eventually.UntilAsync(() => load.CountFor(leaving.Name) >= 10 && load.CountFor(staying.Name) >= 10, TimeSpan.FromSeconds(20),
            $"both backends serving through {kind}");

        var removeClock = Stopwatch.StartNew();
        var removed = await controller.RemoveAsync(member, options, host, CancellationToken.None);
        removeClock.Stop();
        Assert.True(removed.Changed);
        Assert.Equal(MemberAdminState.Maintenance, removed.State);
        Assert.False(removed.DrainTimedOut, "the drain should finish before its timeout: " + host.AllText);
        Assert.Equal(0, removed.ConnectionsCut);

        // Out of rotation: the leaving backend gets nothing while the other one keeps serving.
        var leavingAtRemoval = leaving.Requests;
        var stayingAtRemoval = staying.Requests;
        await Eventually.UntilAsync(() => staying.Requests >= stayingAtRemoval + 150, TimeSpan.FromSeconds(20), $"traffic to {staying.Name} while {member} is out");
        var leavingWhileOut = leaving.Requests - leavingAtRemoval;
        Assert.Equal(0, leavingWhileOut);

        var added = await controller.AddAsync(member, options, host, CancellationToken.None);
        Assert.Equal(MemberAdminState.Ready, added.State);
        var leavingAtAdd = leaving.Requests;
        await Eventually.UntilAsync(() => leaving.Requests >= leavingAtAdd + 50, TimeSpan.FromSeconds(20), $"traffic to {member} after it was added back");

        await load.StopAsync();
        output.WriteLine($"{kind}: {load.Total} requests in {load.Elapsed.TotalSeconds:0.0} s, {load.Failed} failed; " +
                         $"{leaving.Name} served {load.CountFor(leaving.Name)}, {staying.Name} served {load.CountFor(staying.Name)}; " +
                         $"drain of {member}: {removed.DrainDuration.TotalMilliseconds:0} ms (active at start {removed.ActiveAtDrainStart?.ToString() ?? "n/a"}), " +
                         $"remove total {removeClock.Elapsed.TotalMilliseconds:0} ms, add + healthy {added.Duration.TotalMilliseconds:0} ms; " +
                         $"requests to {member} while out: {leavingWhileOut}");
        Assert.True(load.Failed == 0, $"{load.Failed} of {load.Total} requests failed: {string.Join(" | ", load.Failures.Take(5))}");
        return removed;
    }
}
