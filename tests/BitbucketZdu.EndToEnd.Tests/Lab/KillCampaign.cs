using System.Diagnostics;
using System.Text.Json;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>A journal line to strike: its kind (step-begin / step-done) and exact step key (node-2/stop, cluster/finalize).</summary>
public sealed record JournalLine(string Kind, string Step)
{
    public override string ToString() => $"{Kind} {Step}";

    /// <summary>Every line a run journals for these nodes: pre-stage, enable, each node's steps, finalize and (if asked) the wait for STABLE.</summary>
    public static IReadOnlyList<JournalLine> All(IEnumerable<string> nodes, bool waitStable)
    {
        var steps = new List<string>();
        var names = nodes.ToList();
        steps.AddRange(names.Select(n => n + "/pre-stage"));
        steps.Add(PlanStepKeys.EnableUpgradeMode);
        foreach (var n in names)
            steps.AddRange(new[] { "take-out", "stop", "wait-offline", "install", "start", "health-gate", "put-back" }.Select(s => n + "/" + s));
        steps.Add(PlanStepKeys.Finalize);
        if (waitStable) steps.Add(PlanStepKeys.WaitStable);
        return steps.SelectMany(s => new[] { new JournalLine(JournalKinds.StepBegin, s), new JournalLine(JournalKinds.StepDone, s) }).ToList();
    }
}

/// <summary>One kill of the campaign and what followed it up to the next kill (or the run's end).</summary>
public sealed record KillCase(int Nodes, string Round, string KillPoint, string JournalLast, long FromMs, long ToMs, int TotalAtStart, int FailedAtStart)
{
    public long EndMs { get; set; }
    public int Requests { get; set; }
    public int Failed { get; set; }
    public int MaxOut { get; set; }
}

/// <summary>
/// The kill campaign on one shared lab (simulated cluster, HAProxy, user load): rounds of upgrades to the next bug-fix
/// release, each driven by child pwsh runs that are SIGKILLed (at a journal line through the step hook, or at a seeded
/// random moment) and resumed with the same command plus -Resume, until a resume completes. A separate process samples
/// the load balancer throughout (<see cref="RotationSampler"/>); each round ends with the cluster checked.
/// </summary>
public sealed class KillCampaign : IAsyncDisposable
{
    private readonly E2eLab _lab;
    private readonly RotationSampler _sampler;
    private readonly List<KillCase> _cases = new();
    private int _minor;
    private int _process;

    private KillCampaign(E2eLab lab, RotationSampler sampler, int minor)
    {
        _lab = lab;
        _sampler = sampler;
        _minor = minor;
    }

    public E2eLab Lab => _lab;
    public ITestOutputHelper? Output { get => _lab.Output; set => _lab.Output = value; }
    public IReadOnlyList<KillCase> Cases => _cases;
    public string Version => $"8.19.{_minor}";

    public static async Task<KillCampaign> StartAsync(int nodes)
    {
        var lab = await E2eLab.StartAsync(null, new LabOptions { Nodes = nodes, Simple = true });
        try
        {
            var sampler = await RotationSampler.StartAsync(((HAProxyFront)lab.Front).AdminPort, lab.Cluster.Nodes, lab.Dir);
            return new KillCampaign(lab, sampler, 3);
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    private async Task<string> WriteProfileAsync()
    {
        var profile = _lab.Profile();
        var (path, sha) = await SimulatedCluster.DistAsync(Version);
        profile["TargetVersion"] = Version;
        profile["Archive"] = new System.Collections.Hashtable { ["Path"] = path, ["Sha256"] = sha };
        return _lab.WriteProfile(profile);
    }

    /// <summary>
    /// One round (an upgrade to the next release): each process parks at the first of <paramref name="lines"/> not struck
    /// yet and is SIGKILLed there; then the plain -Resume must complete. Returns the lines never reached (a parallel
    /// pre-stage can finish a sibling's step before the kill; the next round strikes it).
    /// </summary>
    public async Task<IReadOnlyList<JournalLine>> StrikeLinesAsync(IEnumerable<JournalLine> lines)
    {
        var round = await BeginRoundAsync();
        var remaining = lines.ToList();
        var resume = false;
        var completed = false;
        while (remaining.Count > 0)
        {
            var reached = Path.Combine(_lab.Dir, $"reached-{++_process}");
            var started = Now;
            var (total, failed) = (_lab.Load.Total, _lab.Load.Failed);
            await using var child = ChildPwsh.StartUpgrade(round.Profile, resume, Hook(remaining, reached, Path.Combine(_lab.Dir, "never")));
            resume = true;
            var hit = false;
            await Eventually.UntilAsync(() => (hit = File.Exists(reached)) || child.HasExited, TimeSpan.FromSeconds(180),
                $"the run to reach one of {remaining.Count} lines ({remaining[0]}, ...)", TimeSpan.FromMilliseconds(20));
            if (!hit)
            {
                // The run went past every remaining line (all of them siblings' pre-stage lines done in an earlier process).
                await AssertCompletedAsync(child, "a run that reached none of " + string.Join(", ", remaining));
                completed = true;
                break;
            }
            await KillAsync(child);
            var text = File.ReadAllText(reached).Trim().Split(' ', 2);
            var line = new JournalLine(text[0], text[1]);
            remaining.Remove(line);
            await RecordAsync(round, line.ToString(), started, total, failed);
            if (!line.Step.EndsWith("/pre-stage", StringComparison.Ordinal))   // pre-stage runs on every node at once: siblings' lines may follow
                Assert.Equal(line.ToString(), _cases[^1].JournalLast);
            await KillReality.AssertAsync(_lab, line, round.From, Version, Output);
        }
        await FinishRoundAsync(round, !completed);
        return remaining;
    }

    /// <summary>
    /// Rounds of kills at seeded random moments: each process is killed a random 0–<paramref name="maxDelayMs"/> ms after
    /// it journaled its run-started/resumed line; a process that completes first ends the round, the next round goes on.
    /// </summary>
    public async Task StrikeRandomAsync(Random random, int kills, int maxDelayMs)
    {
        while (kills > 0)
        {
            var round = await BeginRoundAsync();
            var resume = false;
            var completed = false;
            while (kills > 0)
            {
                var started = Now;
                var (total, failed) = (_lab.Load.Total, _lab.Load.Failed);
                var linesBefore = (await _lab.JournalAsync()).Count;
                var delay = random.Next(maxDelayMs);
                await using var child = ChildPwsh.StartUpgrade(round.Profile, resume);
                resume = true;
                await Eventually.UntilAsync(async () => child.HasExited || (await _lab.JournalAsync()).Count > linesBefore, TimeSpan.FromSeconds(120),
                    "the run to pass preflight (its run-started/resumed line)", TimeSpan.FromMilliseconds(20));
                // The random moment itself: a deadline measured from the run's first line, not a wait for anything.
                var moment = Stopwatch.StartNew();
                while (!child.HasExited && moment.ElapsedMilliseconds < delay) await Task.Delay(10);
                if (child.HasExited)
                {
                    await AssertCompletedAsync(child, $"a run that was to be killed {delay} ms in");
                    completed = true;
                    break;
                }
                await KillAsync(child);
                kills--;
                await RecordAsync(round, $"random: {delay} ms after the run's first line", started, total, failed);
            }
            await FinishRoundAsync(round, resume && !completed);
        }
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private sealed record Round(string Name, string Profile, long StartMs, int FirstCase, string From);

    private async Task<Round> BeginRoundAsync()
    {
        var from = Version;
        _minor++;
        var profile = await WriteProfileAsync();
        return new Round($"{from}->{Version}", profile, Now, _cases.Count, from);
    }

    private static async Task KillAsync(ExternalProcess child)
    {
        child.KillNow();
        Assert.True(await child.WaitForExitAsync(TimeSpan.FromSeconds(10)), "pwsh did not die on SIGKILL");
        Canary.AssertAbsent(child.Output, "the killed run's output");
    }

    private static async Task AssertCompletedAsync(ExternalProcess child, string what)
    {
        // The RESULT line is the child's last: read the output only once the pipes are drained, not at HasExited.
        var output = await child.ExitedOutputAsync(TimeSpan.FromSeconds(30));
        Canary.AssertAbsent(output, what + "'s output");
        Assert.True(output.Contains("RESULT", StringComparison.Ordinal) && !output.Contains("FAILED", StringComparison.Ordinal),
            $"{what} did not complete (exit code {child.ExitCode}): {output}");
    }

    private async Task RecordAsync(Round round, string point, long started, int total, int failed)
    {
        var journal = await _lab.JournalAsync();
        var last = journal[^1];
        var c = new KillCase(_lab.Options.Nodes, round.Name, point, $"{last.Kind} {last.Step}".Trim(), started, Now, total, failed);
        _cases.Add(c);
        Output?.WriteLine($"  kill {_cases.Count} ({round.Name}): {point}; journal ends on {c.JournalLast}");
    }

    /// <summary>The last -Resume completes; then STABLE on the target, every node ACTIVE and in rotation, and the sampler's verdict.</summary>
    private async Task FinishRoundAsync(Round round, bool needsResume)
    {
        if (needsResume)
        {
            await using var final = ChildPwsh.StartUpgrade(round.Profile, resume: true);
            Assert.True(await final.WaitForExitAsync(TimeSpan.FromSeconds(240)), "the resumed run did not finish: " + final.Output);
            await AssertCompletedAsync(final, "the last -Resume");
        }
        await _lab.AssertClusterOnAsync(Version);
        await _lab.AssertAllInRotationAsync();
        var run = JournalRun.Last(await _lab.JournalAsync())!;
        Assert.True(run.Completed, "the journal's last run is not completed");
        Assert.Equal(Version, run.TargetVersion);

        var end = Now;
        var samples = await Eventually.ValueAsync(() => Task.FromResult(_sampler.Read()), s => s.Count > 0 && s[^1].UnixMs >= end, TimeSpan.FromSeconds(30),
            "the sampler to pass the round's end");
        var inRound = samples.Where(s => s.UnixMs >= round.StartMs && s.UnixMs <= end).ToList();
        Assert.True(inRound.Count > 10, $"only {inRound.Count} load-balancer samples in round {round.Name}");
        var worst = inRound.MaxBy(s => s.Out.Count)!;
        Assert.True(worst.Out.Count <= 1, $"{worst.Out.Count} nodes out of rotation at once at {worst.UnixMs} ({string.Join(", ", worst.Out)}) in round {round.Name}");
        // Each node stopped exactly once per round: its process changed (or vanished) once.
        foreach (var node in _lab.NodeNames)
        {
            var stops = 0;
            string? pid = null;
            foreach (var s in inRound)
            {
                var p = s.Pids.GetValueOrDefault(node, "-");
                if (pid is not null && pid != "-" && p != pid) stops++;
                pid = p;
            }
            Assert.True(stops == 1, $"{node} was stopped {stops} times in round {round.Name} (once is needed)");
        }
        var cases = _cases.Skip(round.FirstCase).ToList();
        for (var i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            c.EndMs = i + 1 < cases.Count ? cases[i + 1].FromMs : end;
            var window = inRound.Where(s => s.UnixMs >= c.FromMs && s.UnixMs <= c.EndMs).ToList();
            c.MaxOut = window.Count == 0 ? 0 : window.Max(s => s.Out.Count);
            c.Requests = (i + 1 < cases.Count ? cases[i + 1].TotalAtStart : _lab.Load.Total) - c.TotalAtStart;
            c.Failed = (i + 1 < cases.Count ? cases[i + 1].FailedAtStart : _lab.Load.Failed) - c.FailedAtStart;
        }
        Output?.WriteLine($"round {round.Name}: {cases.Count} kills, {inRound.Count} samples, at most {worst.Out.Count} node(s) out of rotation, user requests {_lab.Load.Total}, failed {_lab.Load.Failed} {_lab.Load.FailureSummary}");
        Assert.True(_lab.Load.Failed == 0, $"{_lab.Load.Failed} of {_lab.Load.Total} user requests failed: {_lab.Load.FailureSummary}");
    }

    /// <summary>
    /// -Hook for the child: at the first StepStarting/StepDone (called right after its line is journaled) whose line is
    /// one of <paramref name="lines"/>, publish "kind step" in <paramref name="reached"/> (written aside, then moved) and
    /// park on a file that never appears.
    /// </summary>
    private static string Hook(IEnumerable<JournalLine> lines, string reached, string never)
    {
        string Block(string kind, string phase)
        {
            var steps = string.Join(", ", lines.Where(l => l.Kind == kind).Select(l => $"'{l.Step}'"));
            return $"'{phase}' = {{ if (@({steps}) -contains $_.Step -and -not (Test-Path -LiteralPath '{reached}')) {{ " +
                $"[IO.File]::WriteAllText('{reached}.tmp', '{kind} ' + $_.Step); [IO.File]::Move('{reached}.tmp', '{reached}'); " +
                $"while (-not (Test-Path -LiteralPath '{never}')) {{ Start-Sleep -Milliseconds 100 }} }} }}";
        }
        return $"-Hook @{{ {Block(JournalKinds.StepBegin, "StepStarting")}; {Block(JournalKinds.StepDone, "StepDone")} }}";
    }

    public async ValueTask DisposeAsync()
    {
        await _sampler.DisposeAsync();
        await _lab.DisposeAsync();
    }
}

/// <summary>
/// Writes <c>out/reliability/kill-campaign.json</c> beside the fault matrix, in the suite shape
/// tools/New-ReliabilityReport.ps1 reads. Each (cluster size, part) replaces its own rows, so a filtered run updates only what it ran.
/// </summary>
public static class KillCampaignReport
{
    public const string SuiteName = "Kill campaign";

    private sealed record Row(string Case, string Area, string Outcome, string? ErrorId, string Message, int? Requests, int? RequestsFailed);

    private static readonly object Gate = new();

    public static string FilePath => Path.Combine(Path.GetDirectoryName(FaultMatrix.FilePath)!, "kill-campaign.json");

    public static void Record(string area, IEnumerable<KillCase> cases, string outcome)
    {
        lock (Gate)
        {
            var file = FilePath;
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var all = new List<Row>();
            try
            {
                if (File.Exists(file))
                {
                    using var doc = JsonDocument.Parse(File.ReadAllText(file));
                    if (doc.RootElement.TryGetProperty("Cases", out var rows)) all = rows.Deserialize<List<Row>>() ?? all;
                }
            }
            catch (JsonException)
            {
            }
            all.RemoveAll(r => r.Area == area);
            all.AddRange(cases.Select(c => new Row(c.KillPoint, area, outcome, null,
                $"-Resume completed (round {c.Round}); journal ended on {c.JournalLast}; at most {c.MaxOut} node(s) out of rotation; {c.Requests} user requests, {c.Failed} failed", c.Requests, c.Failed)));
            var tmp = file + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(new { Suite = SuiteName, Cases = all }, new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, file, overwrite: true);
        }
    }
}
