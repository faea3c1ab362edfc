using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace BitbucketZdu.Cmdlets.Tests;

/// <summary>A real PowerShell runspace with the module imported from the built cmdlet assembly.</summary>
public sealed class PowerShellHost : IDisposable
{
    private readonly Runspace _runspace;

    public PowerShellHost()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { typeof(BitbucketZdu.Cmdlets.ConnectBbClusterCommand).Assembly.Location });
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
    }

    public sealed record Result(Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors, IReadOnlyList<string> Warnings,
        IReadOnlyList<string> Verbose, RuntimeException? Terminating, IReadOnlyList<string>? Information = null)
    {
        /// <summary>The first error, terminating or not (a cmdlet's terminating error stops only its statement in a script).</summary>
        public ErrorRecord? FirstError => Terminating?.ErrorRecord ?? Errors.FirstOrDefault();

        /// <summary>Everything the run printed on any stream, for secret scans.</summary>
        public string AllText => string.Join("\n", Output.Select(o => o?.ToString()).Concat(Errors.Select(e => e.ToString() + e.Exception))
            .Concat(Warnings).Concat(Verbose).Concat(Information ?? Array.Empty<string>()).Append(Terminating?.ToString()));
    }

    /// <summary>Runs a script; a terminating error is captured, not thrown, so tests can assert on its ErrorRecord.</summary>
    public Result Run(string script, IDictionary<string, object?>? variables = null)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        if (variables is not null)
            foreach (var kv in variables) _runspace.SessionStateProxy.SetVariable(kv.Key, kv.Value);
        ps.AddScript(script);
        Collection<PSObject> output = new();
        RuntimeException? terminating = null;
        try
        {
            output = ps.Invoke();
        }
        catch (RuntimeException ex)
        {
            terminating = ex;
        }
        return new Result(output, ps.Streams.Error.ToList(), ps.Streams.Warning.Select(w => w.Message).ToList(),
            ps.Streams.Verbose.Select(v => v.Message).ToList(), terminating, ps.Streams.Information.Select(i => i.MessageData?.ToString() ?? "").ToList());
    }

    public void Dispose() => _runspace.Dispose();
}
