using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Core.Tests.Nodes;

public class LocalShellTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("with space and 'single' and \"double\" quotes")]
    [InlineData(@"back\slash\\ and trailing\")]
    [InlineData("$HOME `tick` ;|&")]
    public async Task Arguments_reach_the_shell_unchanged(string text)
    {
        using var shell = new LocalShell();
        var escaped = text.Replace("'", "'\\''");
        var r = await shell.RunAsync($"printf '%s' '{escaped}'", TimeSpan.FromSeconds(10));
        Assert.True(r.Succeeded, r.StandardError);
        Assert.Equal(text, r.StandardOutput.TrimEnd('\n', '\r'));
    }

    [Fact]
    public async Task Exit_codes_and_stderr_are_returned_not_thrown()
    {
        using var shell = new LocalShell();
        var r = await shell.RunAsync("echo oops >&2; exit 3", TimeSpan.FromSeconds(10));
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("oops", r.StandardError);
    }

    [Fact]
    public async Task A_command_past_its_timeout_is_killed_and_reported()
    {
        using var shell = new LocalShell();
        var started = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<TimeoutException>(() => shell.RunAsync("sleep 30", TimeSpan.FromMilliseconds(300)));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Writes_are_atomic_replacements()
    {
        using var shell = new LocalShell();
        var dir = Directory.CreateTempSubdirectory("bbzdu-shell-");
        try
        {
            var path = Path.Combine(dir.FullName, "f.conf");
            await shell.WriteTextAsync(path, "one");
            await shell.WriteTextAsync(path, "two");
            Assert.Equal("two", await shell.ReadTextAsync(path));
            Assert.Single(Directory.GetFiles(dir.FullName));
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
