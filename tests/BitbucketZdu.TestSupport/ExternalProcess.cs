using System.Diagnostics;
using System.Text;

namespace BitbucketZdu.TestSupport;

/// <summary>A server or tool the tests start (haproxy, nginx, apache2, sshd, a simulator node). Killed with its tree on dispose.</summary>
public sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ExternalProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string Output { get { lock (_output) return _output.ToString(); } }

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null,
        IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var kv in environment) psi.Environment[kv.Key] = kv.Value;
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var ep = new ExternalProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (ep._output) ep._output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (ep._output) ep._output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return ep;
    }

    /// <summary>Runs a command to completion and returns its exit code and combined output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string fileName, IEnumerable<string> arguments,
        TimeSpan timeout, string? workingDirectory = null, IDictionary<string, string>? environment = null)
    {
        await using var p = Start(fileName, arguments, workingDirectory, environment);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p._process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{fileName} did not finish within {timeout.TotalSeconds:0.#} s. Output: {p.Output}");
        }
        return (p._process.ExitCode, p.Output);
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Everything the process wrote, read after it exited and both pipes reached end of file. <see cref="HasExited"/>
    /// turns true while the last lines can still be in the reader threads: reading <see cref="Output"/> then loses them.
    /// </summary>
    public async Task<string> ExitedOutputAsync(TimeSpan timeout)
    {
        if (!await WaitForExitAsync(timeout))
            throw new TimeoutException($"the process did not exit within {timeout.TotalSeconds:0.#} s. Output so far: {Output}");
        return Output;
    }

    /// <summary>SIGKILL (TerminateProcess on Windows) at once, without spawning 'kill': a crash at a precise moment.</summary>
    public void KillNow() => _process.Kill();

    public void Signal(string signal) => Process.Start("kill", new[] { "-" + signal, _process.Id.ToString() })?.WaitForExit();

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await WaitForExitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
