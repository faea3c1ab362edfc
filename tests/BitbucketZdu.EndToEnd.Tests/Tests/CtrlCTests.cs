using System.Diagnostics;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Ctrl+C in the middle of Invoke-BbRollingUpgrade (in-process: the hook calls BeginStop on the running PowerShell,
/// which is what the console host does on Ctrl+C): the cmdlet ends promptly, the struck node is put back when it still
/// serves its old version, or is reported (warning, -LogPath log, journal) as left out when it is stopped or runs the new
/// version without having passed the health gate; the journal ends on run-cancelled, the lock is released, and -Resume
/// completes.
/// </summary>
public sealed class CtrlCTests
{
    private readonly ITestOutputHelper _output;

    public CtrlCTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData("NodeOutOfRotation", null, "put back")]       // drained, still running the old version: put back
    [InlineData("StepDone", "stop", "stopped")]                // stopped: nothing can serve, it stays out until -Resume
    [InlineData("StepStarting", "health-gate", "unverified")]  // started on the new version, health gate not passed: stays out
    public async Task Ctrl_C_mid_run_ends_promptly_truthfully_and_resume_completes(string phase, string? step, string left)
    {
        var putBack = left == "put back";
        await using var lab = await E2eLab.StartAsync(_output);
        using var session = new ModuleSession();
        var log = Path.Combine(lab.Dir, "run.log.jsonl");
        string? struck = null;
        Stopwatch? sinceStop = null;
        Action<UpgradeEvent> strike = e =>
        {
            if (struck is not null || e.Phase.ToString() != phase || e.Node is null) return;
            if (step is not null && e.Step != e.Node + "/" + step) return;
            struck = e.Node;
            sinceStop = Stopwatch.StartNew();
            session.Running!.BeginStop(null, null); // what Ctrl+C does
        };
        var run = await session.RunAsync(
            $"Invoke-BbRollingUpgrade -ProfilePath $bbProfile -Credential $bbCredential -Confirm:$false -LogPath $bbLog -Hook @{{ '{phase}' = {{ $bbStrike.Invoke($_) }} }}",
            new Dictionary<string, object?> { ["bbProfile"] = lab.WriteProfile(), ["bbCredential"] = E2eLab.Credential, ["bbLog"] = log, ["bbStrike"] = strike });
        var stopTook = sinceStop?.Elapsed;
        Assert.NotNull(struck);
        _output.WriteLine($"Ctrl+C at {phase} {step} of {struck}: the cmdlet returned {stopTook?.TotalSeconds:0.0} s later with {run.ErrorId}: {run.ErrorMessage}");
        Canary.AssertAbsent(run.AllText, "the stopped run's output");
        Assert.False(run.Succeeded);
        Assert.True(stopTook < TimeSpan.FromSeconds(15), $"the cmdlet took {stopTook} to stop");

        // The lock is released by the time the cmdlet returns: a new run may start at once.
        var store = new FileJournalStore(lab.JournalDir);
        Assert.False(File.Exists(store.LockFile(E2eLab.ClusterName)), "the stopped run kept the cluster's lock");

        // The journal says the run was cancelled, during which node, and how to go on.
        var entries = JournalRun.Last(await lab.JournalAsync())!.Entries;
        _output.WriteLine("journal: " + string.Join(" | ", entries.TakeLast(5).Select(e => $"{e.Kind} {e.Step} {e.Message}")));
        var last = entries[^1];
        Assert.Equal(JournalKinds.RunCancelled, last.Kind);
        Assert.Contains(struck!, last.Message);
        Assert.Contains("-Resume", last.Message);
        Assert.Contains(left switch { "put back" => "was put back into rotation", "stopped" => "was stopped", _ => "was not through the health gate" }, last.Message);
        if (!putBack) Assert.Contains("stays out of rotation", last.Message);

        // Reality matches: put back when it still served, else left out (stopped) and said so.
        var profile = ClusterProfileReader.Read(lab.Profile(), lab.ProfilePath);
        var node = profile.FindNode(struck!)!;
        using var rotation = new LoadBalancerRotation(profile);
        using var host = new NodeStepsHost(profile, (_, _) => Task.FromResult<INodeShell>(new LocalShell()));
        var state = await host.GetStateAsync(node, CancellationToken.None);
        var rotationState = await rotation.GetStateAsync(node, CancellationToken.None);
        _output.WriteLine($"{struck}: {rotationState}, install dir {state.InstalledVersion}, process {(state.ProcessRunning ? "running" : "stopped")}");
        var logText = File.ReadAllText(log);
        Canary.AssertAbsent(logText, "the -LogPath log");
        Assert.Equal(left == "unverified" ? "8.19.4" : "8.19.3", state.InstalledVersion);
        if (putBack)
        {
            Assert.Equal(RotationState.InRotation, rotationState);
            Assert.True(state.ProcessRunning);
            Assert.Contains(entries, e => e.Kind == JournalKinds.RollbackDone && e.Node == struck && e.Message!.Contains("put back into rotation"));
            await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames);
        }
        else
        {
            Assert.Equal(RotationState.OutOfRotation, rotationState);
            Assert.Equal(left == "unverified", state.ProcessRunning);
            Assert.DoesNotContain(entries, e => e.Kind == JournalKinds.RollbackDone && e.Node == struck);
            Assert.Contains(left == "stopped" ? $"Node {struck} was interrupted while stopped: it stays out of rotation"
                : $"Node {struck} was interrupted before passing the health gate on 8.19.4: it stays out of rotation", logText);
            await lab.Load.AssertEveryNodeServesAsync(lab.NodeNames.Where(n => n != struck));
        }

        var resumed = await lab.InvokeRollingUpgradeAsync("-Resume", session: session);
        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        lab.Print("-Resume after Ctrl+C", resumed);
        Assert.True(resumed.Succeeded, resumed.ErrorMessage);
        Assert.Contains("3/3", resumed.Report!.Summary);
        await lab.AssertClusterOnAsync("8.19.4");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
        lab.Record($"Ctrl+C at {(step is null ? phase : phase + " " + step)}, then -Resume",
            (putBack ? "stopped promptly; the drained node put back into rotation"
                : $"stopped promptly; the {(left == "stopped" ? "stopped node" : "node started on 8.19.4 but not through the health gate")} reported left out of rotation")
            + "; journal run-cancelled, lock released; -Resume upgraded 3/3, STABLE", null,
            $"the cmdlet returned {stopTook?.TotalSeconds:0.0} s after the stop request");
    }
}
