using System.Collections.Concurrent;
using Xunit.Abstractions;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>Prints each step's wall time over real SSH (test output, and a line in bbzdu-node-timings.txt in the test's bin dir).</summary>
public static class StepTimings
{
    private static readonly ConcurrentQueue<string> Lines = new();

    public static async Task<T> Time<T>(ITestOutputHelper output, Transport transport, string step, Func<Task<T>> work)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var result = await work();
        var line = $"{transport,-9} {step,-22} {sw.Elapsed.TotalMilliseconds,8:0} ms";
        output.WriteLine(line);
        Lines.Enqueue(line);
        File.AppendAllText(Path.Combine(AppContext.BaseDirectory, "bbzdu-node-timings.txt"), line + "\n");
        return result;
    }
}
