using System.Management.Automation;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.TestSupport;
using BitbucketZdu.Upgrade;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Cmdlets.Tests.Upgrade;

/// <summary>
/// Invoke-BbRollingUpgrade after a killed run: -Resume of finished work succeeds; -Adopt takes over an upgrade whose
/// journal is lost; -Resume -WhatIf shows what is done.
/// </summary>
[Collection(UpgradePortsFactoryCollection.Name)]
public sealed class ResumeAdoptCmdletTests : IDisposable
{
    // Above Linux's pid_max (4194304): no live process has it, so the killed run's lock is stale for certain.
    private const int KilledPid = 4_194_400;
    private readonly UpgradeFixture _f = new();
    private readonly PowerShellHost _ps = new();
    private readonly IUpgradePortsFactory _previous = UpgradePortsFactory.Current;
    private readonly string _profile;

    public ResumeAdoptCmdletTests()
    {
        UpgradePortsFactory.Current = new FakeUpgradePortsFactory(_f);
        _profile = Path.Combine(_f.Directory, "prod.psd1");
        var r = _ps.Run("New-BbClusterProfile -Path $p -ArchivePath $a -ArchiveSha256 $s -NodeName node-1,node-2,node-3", Vars());
        Assert.Null(r.FirstError);
    }

    private Dictionary<string, object?> Vars() => new()
    {
        ["p"] = _profile,
        ["a"] = _f.ArchivePath,
        ["s"] = PreflightCheck.Sha256Of(_f.ArchivePath),
        ["j"] = _f.Journal.Directory,
        ["cred"] = new PSCredential(Canary.UserName, Canary.Secure(Canary.Password)),
    };

    /// <summary>A run of the engine on the same world and journal, SIGKILLed (simulated) right after <paramref name="line"/> is written.</summary>
    private async Task KilledAt(Func<JournalEntry, bool> line)
    {
        var process = new FakeProcess();
        var killing = new KillingJournal(_f.Journal, process, int.MaxValue) { WriteBeforeKill = true, KillAtLine = line };
        await Assert.ThrowsAnyAsync<Exception>(() => _f.Runner(killing, process).RunAsync(_f.Profile, Options(KilledPid), CancellationToken.None));
        Assert.True(killing.Fired);
    }

    [Fact]
    public async Task Resume_of_a_run_killed_after_its_approve_succeeds_and_says_the_work_was_done()
    {
        await KilledAt(e => e.Kind == JournalKinds.StepDone && e.Step == PlanStepKeys.Finalize);
        var ops = _f.World.Operations.Count;

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume", Vars());

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.True(report.Succeeded, report.Summary);
        Assert.True(report.AlreadyDone);
        Assert.Equal(ops, _f.World.Operations.Count);
        Assert.Equal(JournalKinds.RunCompleted, (await _f.ReadJournal())[^1].Kind);
        Assert.Contains(r.Information!, m => m.Contains("already done the work", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _ps.Dispose();
        _f.Dispose();
    }
}
