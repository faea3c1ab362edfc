using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// Invoke-BbRollingUpgrade in a child pwsh, SIGKILLed when the journal reaches a step of the first node, then
/// -Resume in a new process: the upgrade completes and no node is left out of rotation.
/// </summary>
public sealed class KillAndResumeTests
{
    private readonly ITestOutputHelper _output;

    public KillAndResumeTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData("take-out", JournalKinds.StepBegin)] // while draining
    [InlineData("stop", JournalKinds.StepDone)]      // stopped, out of rotation
    [InlineData("start", JournalKinds.StepDone)]     // new version starting, out of rotation
    public async Task Killed_at_a_step_and_resumed_in_a_new_process_completes(string step, string kind)
    {
        await using var lab = await E2eLab.StartAsync(_output);
        var profile = lab.WriteProfile();

        JournalEntry? struck = null;
        await using (var first = ChildPwsh.StartUpgrade(profile, resume: false))
        {
            // A tight poll of the journal file and a direct SIGKILL: the process dies within milliseconds of the step.
            var marker = $"\"{kind}\"";
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (struck is null)
            {
                if (first.HasExited) throw new InvalidOperationException("the run ended before the step: " + first.Output);
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"the journal never reached {kind} of a node's {step}");
                string text;
                try { text = File.Exists(lab.JournalFile) ? File.ReadAllText(lab.JournalFile) : ""; } catch (IOException) { text = ""; }
                if (text.Contains($"/{step}\"", StringComparison.Ordinal) && text.Contains(marker, StringComparison.Ordinal))
                {
                    struck = (await lab.JournalAsync()).FirstOrDefault(e => e.Kind == kind && e.Step?.EndsWith("/" + step, StringComparison.Ordinal) == true);
                    if (struck is not null) first.KillNow();
                }
                if (struck is null) await Task.Delay(5);
            }
            Assert.True(await first.WaitForExitAsync(TimeSpan.FromSeconds(10)), "pwsh did not die on SIGKILL");
            Canary.AssertAbsent(first.Output, "the killed run's output");
        }
        var last = (await lab.JournalAsync()).Last();
        _output.WriteLine($"killed at {kind} {struck.Step}; the journal's last line: {last.Kind} {last.Step}");
        Assert.Equal(struck.Node, last.Node);

        await using var second = ChildPwsh.StartUpgrade(profile, resume: true);
        Assert.True(await second.WaitForExitAsync(TimeSpan.FromSeconds(150)), "the resumed run did not finish: " + second.Output);
        Canary.AssertAbsent(second.Output, "the resumed run's output");
        _output.WriteLine(second.Output.Trim());
        Assert.Contains("RESULT", second.Output);
        Assert.Contains("3/3", second.Output);

        await lab.AssertAllInRotationAsync();
        await lab.Load.StopAsync();
        await lab.AssertClusterOnAsync("8.19.4");
        var resumed = JournalRun.Last(await lab.JournalAsync())!.Entries;
        Assert.Contains(resumed, e => e.Kind == JournalKinds.RunResumed);
        Assert.Equal(JournalKinds.RunCompleted, resumed.Last().Kind);
        _output.WriteLine($"user requests {lab.Load.Total}, failed {lab.Load.Failed} {lab.Load.FailureSummary}");
        Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} of {lab.Load.Total} user requests failed: {lab.Load.FailureSummary}");
        lab.Record($"process killed at {kind} {step}, then -Resume", "upgraded 3/3, STABLE, all in rotation", null);
    }
}
