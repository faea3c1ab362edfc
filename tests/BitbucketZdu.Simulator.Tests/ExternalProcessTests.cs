using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>
/// A child's last line must be readable once it exited: the kill campaign once failed a completed run because it read
/// the output when HasExited turned true, before the reader thread had appended the final RESULT line.
/// </summary>
public sealed class ExternalProcessTests
{
    [Fact]
    public async Task Exited_output_holds_the_last_line_of_a_long_output()
    {
        if (OperatingSystem.IsWindows()) return;   // sh is the portable writer here
        for (var attempt = 0; attempt < 5; attempt++)
        {
            // Enough lines that the reader threads are still busy when the process is reaped.
            await using var p = ExternalProcess.Start("sh", new[] { "-c", "seq 1 50000; echo LAST-LINE; seq 1 50000 >&2" });
            var output = await p.ExitedOutputAsync(TimeSpan.FromSeconds(60));
            Assert.Contains("LAST-LINE", output);
            Assert.Contains("50000", output[^20..]);
        }
    }
}
