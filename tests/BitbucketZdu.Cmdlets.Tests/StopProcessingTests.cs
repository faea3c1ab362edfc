using System.Management.Automation;
using System.Management.Automation.Runspaces;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>What a test cmdlet's background work saw and did.</summary>
public sealed class StopProbe
{
    public ManualResetEventSlim Started { get; } = new();
    public volatile bool Cancelled;
    public volatile bool CleanedUp;
    public int Answer;
}

/// <summary>A BbCmdlet whose work waits for cancellation, then cleans up like the engine does: writes, asks, takes a moment.</summary>
[Cmdlet("Test", "BbStopCleanup")]
public sealed class TestBbStopCleanupCommand : BbCmdlet
{
    [Parameter(Mandatory = true)]
    public StopProbe Probe { get; set; } = null!;

    [Parameter]
    public int Objects { get; set; }

    protected override void ProcessRecord() => Run(async (bridge, ct) =>
    {
        for (var i = 1; i <= Objects; i++) bridge.WriteObject(i);
        Probe.Started.Set();
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            Probe.Cancelled = true;
            bridge.Warning("Putting the node back into rotation.");   // the pipeline is stopping: this cannot be shown
            Probe.Answer = bridge.Ask(() => 42);                       // but questions are still answered (no deadlock)
            await Task.Delay(300, CancellationToken.None);            // cleanup that takes a moment
            Probe.CleanedUp = true;
            throw;
        }
    });
}

/// <summary>
/// Ctrl+C (StopProcessing) and a downstream stop (Select-Object -First) end a BbCmdlet only after its background work
/// finished cleaning up: before, the first Write* after the stop threw out of the pump and the cmdlet returned (and
/// disposed the ports) while the engine was still putting a node back and holding the cluster's lock.
/// </summary>
public sealed class StopProcessingTests : IDisposable
{
    private readonly Runspace _runspace;

    public StopProcessingTests()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.Commands.Add(new SessionStateCmdletEntry("Test-BbStopCleanup", typeof(TestBbStopCleanupCommand), null));
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
    }

    [Fact]
    public void Ctrl_C_returns_after_the_cleanup_finished()
    {
        var probe = new StopProbe();
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddCommand("Test-BbStopCleanup").AddParameter("Probe", probe);
        var invoke = ps.BeginInvoke();
        Assert.True(probe.Started.Wait(TimeSpan.FromSeconds(10)), "the work did not start");

        ps.Stop(); // what the console host does on Ctrl+C; returns when the pipeline has stopped

        Assert.True(invoke.IsCompleted);
        Assert.Equal(PSInvocationState.Stopped, ps.InvocationStateInfo.State);
        Assert.True(probe.Cancelled);
        Assert.True(probe.CleanedUp, "the cmdlet returned before its work finished cleaning up");
        Assert.Equal(42, probe.Answer);
    }

    [Fact]
    public void A_downstream_stop_cancels_the_work_and_waits_for_it()
    {
        var probe = new StopProbe();
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript("Test-BbStopCleanup -Probe $args[0] -Objects 3 | Select-Object -First 1").AddArgument(probe);

        var output = ps.Invoke();

        Assert.Equal(new object[] { 1 }, output.Select(o => o.BaseObject));
        Assert.False(ps.HadErrors);
        Assert.True(probe.Cancelled, "the work was not cancelled when the pipeline no longer wanted output");
        Assert.True(probe.CleanedUp);
    }

    public void Dispose() => _runspace.Dispose();
}
