using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Runner;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>Ctrl+C: the journal's run-cancelled line says where the interrupted node was left, not only that it was.</summary>
public sealed class CancellationJournalTests : IDisposable
{
    private readonly UpgradeFixture _f = new();

    [Theory]
    [InlineData(UpgradePhase.NodeOutOfRotation, null, "node node-1 still ran 8.19.3 and was put back into rotation", RotationState.InRotation)]
    [InlineData(UpgradePhase.StepDone, "node-1/stop", "node node-1 was stopped (install dir 8.19.3) and stays out of rotation until -Resume finishes it", RotationState.OutOfRotation)]
    // Started on the new version, health gate not run: not put back unverified.
    [InlineData(UpgradePhase.StepStarting, "node-1/health-gate", "node node-1 runs 8.19.4 but was not through the health gate, so it stays out of rotation until -Resume finishes it", RotationState.OutOfRotation)]
    // Interrupted while being put back after the health gate passed: put back.
    [InlineData(UpgradePhase.StepStarting, "node-1/put-back", "node node-1 still ran 8.19.4 and was put back into rotation", RotationState.InRotation)]
    public async Task The_cancelled_line_says_where_the_node_was_left(UpgradePhase phase, string? step, string where, RotationState rotation)
    {
        using var cts = new CancellationTokenSource();
        UpgradeHook hook = (e, ct) =>
        {
            if (e.Phase == phase && e.Node == "node-1" && (step is null || e.Step == step)) cts.Cancel();
            return Task.CompletedTask;
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _f.Runner().RunAsync(_f.Profile, Options(1, hook: hook), cts.Token));

        var last = (await _f.ReadJournal())[^1];
        Assert.Equal(JournalKinds.RunCancelled, last.Kind);
        Assert.Equal($"Cancelled (Ctrl+C) during node node-1: {where}. Run with -Resume to continue.", last.Message);
        Assert.Equal(rotation, _f.World["node-1"].Rotation);
        Assert.False(File.Exists(_f.Journal.LockFile("prod")));

        var resumed = await _f.Runner().RunAsync(_f.Profile, Options(2, resume: true), CancellationToken.None);
        Assert.True(resumed.Report!.Succeeded);
        Assert.True(_f.World.AllOn(To));
    }

    public void Dispose() => _f.Dispose();
}
