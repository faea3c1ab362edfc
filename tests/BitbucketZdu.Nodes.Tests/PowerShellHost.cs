using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>A real PowerShell runspace with the module imported from the built cmdlet assembly.</summary>
public sealed class PowerShellHost : IDisposable
{
    private readonly Runspace _runspace;

    public PowerShellHost()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { typeof(BitbucketZdu.Cmdlets.GetBbNodeInstallationCommand).Assembly.Location });
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
    }

    public sealed record Result(Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors, IReadOnlyList<string> Warnings, RuntimeException? Terminating)
    {
        public ErrorRecord? FirstError => Terminating?.ErrorRecord ?? Errors.FirstOrDefault();

        public string AllText => string.Join("\n", Output.Select(o => o?.ToString()).Concat(Errors.Select(e => e + " " + e.Exception)).Concat(Warnings).Append(Terminating?.ToString()));
    }

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
        return new Result(output, ps.Streams.Error.ToList(), ps.Streams.Warning.Select(w => w.Message).ToList(), terminating);
    }

    public void Dispose() => _runspace.Dispose();
}
