using System.Management.Automation;
using System.Management.Automation.Runspaces;
using BitbucketZdu.Core.Upgrade.Report;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>What one Invoke-BbRollingUpgrade run returned: the report (also on a halt) and the error it stopped with.</summary>
public sealed record UpgradeRun(UpgradeReport? Report, string? ErrorId, string? ErrorMessage, string AllText, TimeSpan Elapsed)
{
    public bool Succeeded => ErrorId is null && Report is { Succeeded: true };
}

/// <summary>The module imported from the built cmdlet assembly into a runspace of this process (as users run it in pwsh).</summary>
public sealed class ModuleSession : IDisposable
{
    private readonly Runspace _runspace;

    public ModuleSession()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { ModulePath });
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
    }

    /// <summary>The PowerShell of the run in progress (null between runs): a test presses Ctrl+C with <c>BeginStop</c>.</summary>
    public PowerShell? Running { get; private set; }

    public static string ModulePath => typeof(BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand).Assembly.Location;

    /// <summary>Runs a script off the test thread; a terminating error becomes the run's ErrorId and message.</summary>
    public Task<UpgradeRun> RunAsync(string script, IDictionary<string, object?> variables) => Task.Run(() =>
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        foreach (var kv in variables) _runspace.SessionStateProxy.SetVariable(kv.Key, kv.Value);
        ps.AddScript(script);
        var output = new List<PSObject>();
        ErrorRecord? terminating = null;
        Running = ps;
        try
        {
            output.AddRange(ps.Invoke());
        }
        catch (RuntimeException ex)
        {
            terminating = ex.ErrorRecord;
        }
        finally
        {
            Running = null;
        }
        var error = terminating ?? ps.Streams.Error.FirstOrDefault();
        var text = string.Join("\n", output.Select(o => o?.ToString()).Concat(ps.Streams.Error.Select(e => e + " " + e.Exception))
            .Concat(ps.Streams.Warning.Select(w => w.Message)).Concat(ps.Streams.Verbose.Select(v => v.Message)).Append(terminating?.ToString()));
        return new UpgradeRun(output.Select(o => o.BaseObject).OfType<UpgradeReport>().LastOrDefault(),
            error?.FullyQualifiedErrorId.Split(',')[0], error?.Exception.Message, text, sw.Elapsed);
    });

    public void Dispose() => _runspace.Dispose();
}
