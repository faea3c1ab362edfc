using System.Management.Automation;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
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

    [Fact]
    public async Task A_lost_journal_on_a_MIXED_cluster_is_refused_naming_Adopt_and_Adopt_finishes_it()
    {
        await KilledAt(e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/put-back");
        File.Delete(_f.Journal.JournalFile("prod"));
        File.Delete(_f.Journal.LockFile("prod"));

        var refused = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume", Vars());
        Assert.Equal("PreflightUpgradeNotOurs,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand", refused.FirstError!.FullyQualifiedErrorId);
        Assert.Contains($"Invoke-BbRollingUpgrade -ProfilePath {_profile} -Adopt", refused.FirstError.Exception.Message, StringComparison.Ordinal);

        var whatIf = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Adopt -WhatIf", Vars());
        Assert.Null(whatIf.FirstError);
        var plan = (UpgradePlan)Assert.Single(whatIf.Output).BaseObject;
        Assert.Contains(whatIf.Information!, m => m.StartsWith("Adopting", StringComparison.Ordinal) && m.Contains("node-1: ACTIVE on 8.19.4", StringComparison.Ordinal));
        Assert.All(plan.Steps.Where(s => s.Node == "node-1"), s => Assert.NotNull(s.Done));
        Assert.Null(plan.Steps.Single(s => s.Key == "node-2/stop").Done);
        Assert.Empty(await _f.ReadJournal());

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Adopt", Vars());

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.True(report.Succeeded, report.Summary);
        Assert.True(report.Adopted);
        Assert.True(_f.World.AllOn(To));
        Assert.Equal(1, _f.World.Count("node-1:stop"));
        Assert.Equal(1, _f.World.Count("cluster:approve"));
    }

    /// <summary>A resumed run continues the journal's run: the report, the journal and the log's lines from then on carry its id.</summary>
    [Fact]
    public async Task A_resumed_run_logs_under_the_journal_runs_id()
    {
        await KilledAt(e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/put-back");
        var killed = (await _f.ReadJournal())[0].RunId;
        var log = Path.Combine(_f.Directory, "resume.jsonl");
        var vars = Vars();
        vars["log"] = log;

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume -LogPath $log", vars);

        Assert.Null(r.FirstError);
        var report = (UpgradeReport)Assert.Single(r.Output).BaseObject;
        Assert.Equal(killed, report.RunId);
        Assert.All(await _f.ReadJournal(), e => Assert.Equal(killed, e.RunId));
        var lines = File.ReadAllLines(log).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        var switched = lines.FindIndex(l => l.GetProperty("kind").GetString() == "run");
        Assert.True(switched > 0, "no line says which run the command continues");
        Assert.Contains(killed, lines[switched].GetProperty("message").GetString());
        Assert.All(lines.Skip(switched), l => Assert.Equal(killed, l.GetProperty("run").GetString()));
        Assert.Contains(lines, l => l.GetProperty("kind").GetString() == "output" && l.GetProperty("run").GetString() == killed);
    }

    [Fact]
    public async Task Resume_WhatIf_marks_the_steps_already_done()
    {
        await KilledAt(e => e.Kind == JournalKinds.StepDone && e.Step == "node-2/take-out");

        var r = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Resume -WhatIf", Vars());

        Assert.Null(r.FirstError);
        var plan = (UpgradePlan)Assert.Single(r.Output).BaseObject;
        Assert.All(plan.Steps.Where(s => s.Kind == StepKind.PreStage || s.Node == "node-1"), s => Assert.NotNull(s.Done));
        Assert.NotNull(plan.Steps.Single(s => s.Kind == StepKind.EnableUpgradeMode).Done);
        // Out of rotation with its process up is no proof the take-out finished (a run killed while draining looks the
        // same): the resume runs it again, so -WhatIf shows it as still to do.
        Assert.Null(plan.Steps.Single(s => s.Key == "node-2/take-out").Done);
        Assert.Null(plan.Steps.Single(s => s.Key == "node-2/stop").Done);
        Assert.Null(plan.Steps.Single(s => s.Kind == StepKind.Finalize).Done);
        Assert.Contains("[done: ", plan.Steps.Single(s => s.Key == "node-1/stop").ToString(), StringComparison.Ordinal);
        Assert.Equal(RotationState.OutOfRotation, _f.World["node-2"].Rotation);
    }

    [Fact]
    public async Task Test_profile_after_a_kill_advises_the_resume_and_raises_nothing_the_resume_would_not()
    {
        await KilledAt(e => e.Kind == JournalKinds.StepDone && e.Step == "node-1/stop");

        var r = _ps.Run("Test-BbClusterProfile -ProfilePath $p -Credential $cred -JournalPath $j", Vars());

        Assert.Null(r.FirstError);
        var errors = r.Output.Select(o => (PreflightFinding)o.BaseObject).Where(f => f.Severity == FindingSeverity.Error).ToList();
        var error = Assert.Single(errors);
        Assert.Equal("PreflightResumeRequired", error.Check);
        Assert.Contains($"-ProfilePath {_profile} -Resume", error.Message, StringComparison.Ordinal);
        var resumed = _ps.Run("Invoke-BbRollingUpgrade -ProfilePath $p -Credential $cred -JournalPath $j -Confirm:$false -Resume", Vars());
        Assert.Null(resumed.FirstError);
        Assert.True(_f.World.AllOn(To));
    }

    public void Dispose()
    {
        UpgradePortsFactory.Current = _previous;
        _ps.Dispose();
        _f.Dispose();
    }
}
