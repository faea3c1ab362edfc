using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>
/// Invoke-BbRollingUpgrade in its own pwsh process (<c>dotnet &lt;PSHOME&gt;/pwsh.dll</c>), so a test can SIGKILL it mid-run
/// like a crashed runbook. The password travels in the child's environment, never on its command line.
/// </summary>
public static class ChildPwsh
{
    /// <param name="extraParameters">More cmdlet parameters as PowerShell text, e.g. a -Hook that blocks at a step (see KillPoint).</param>
    public static ExternalProcess StartUpgrade(string profilePath, bool resume, string extraParameters = "")
    {
        // Plain text: a child's error view carries ANSI colour codes otherwise, and they reach test reports (0x1B is invalid XML).
        var script = "$PSStyle.OutputRendering = 'PlainText'; " +
            $"$ErrorActionPreference = 'Stop'; Import-Module '{ModuleSession.ModulePath}'; " +
            "$c = [pscredential]::new($env:BBZDU_E2E_USER, (ConvertTo-SecureString $env:BBZDU_E2E_PASSWORD -AsPlainText -Force)); " +
            $"$r = Invoke-BbRollingUpgrade -ProfilePath '{profilePath}' -Credential $c -Confirm:$false{(resume ? " -Resume" : "")} {extraParameters}; " +
            "'RESULT ' + $r.Summary";
        return ExternalProcess.Start(Pwsh.DotnetPath, new[] { Path.Combine(Pwsh.Home, "pwsh.dll"), "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", script },
            environment: new Dictionary<string, string> { ["BBZDU_E2E_USER"] = Canary.UserName, ["BBZDU_E2E_PASSWORD"] = Canary.Password, ["NO_COLOR"] = "1" });
    }
}
