<#
.SYNOPSIS
    Runs (or resumes) a rolling upgrade without anyone at the keyboard: for a Windows scheduled task or a Linux systemd timer.

.DESCRIPTION
    Non-interactive: never prompts (-Confirm:$false), writes a JSON-lines log (-LogPath) and ends with exit code 0 when
    the cluster is upgraded (or, with -WhatIf, when the plan was printed) and 1 on any failure, so the scheduler's
    history shows the outcome. Run it again after a failure: -Resume (the default) continues from the journal.

    The Bitbucket system administrator comes from, in this order:
      -CredentialPath   an Export-Clixml file of a PSCredential (Windows: encrypted for the task's account with DPAPI)
      $env:CREDENTIALS_DIRECTORY/<CredentialName>   systemd LoadCredential= (a file with the password only);
                        the user name is -UserName (default: admin)

.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-ScheduledUpgrade.ps1 -ProfilePath /etc/bitbucket-zdu/prod.psd1 -LogPath /var/log/bitbucket-zdu/upgrade.jsonl
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $ProfilePath,
    [Parameter(Mandatory)] [string] $LogPath,
    [string] $CredentialPath,
    [string] $CredentialName = 'bitbucket-password',
    [string] $UserName = 'admin',
    [string] $ModulePath = 'BitbucketZdu',
    [switch] $NoResume
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'   # no progress bars in a service's log

function Write-RunLine([string] $Kind, [hashtable] $Fields) {
    # One JSON line of the script's own, in the same file as the cmdlet's entries.
    $entry = [ordered]@{ time = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ'); kind = $Kind; command = 'Invoke-ScheduledUpgrade.ps1' }
    foreach ($k in $Fields.Keys) { $entry[$k] = $Fields[$k] }
    $folder = Split-Path -Parent $LogPath
    if ($folder -and -not (Test-Path $folder)) { New-Item -ItemType Directory -Path $folder -Force -WhatIf:$false | Out-Null }
    Add-Content -LiteralPath $LogPath -Value ($entry | ConvertTo-Json -Compress) -Encoding utf8 -WhatIf:$false
}

function Get-UpgradeCredential {
    if ($CredentialPath) { return Import-Clixml -LiteralPath $CredentialPath }
    if ($env:CREDENTIALS_DIRECTORY -and (Test-Path (Join-Path $env:CREDENTIALS_DIRECTORY $CredentialName))) {
        $plain = (Get-Content -LiteralPath (Join-Path $env:CREDENTIALS_DIRECTORY $CredentialName) -Raw).TrimEnd("`r", "`n")
        return [pscredential]::new($UserName, (ConvertTo-SecureString $plain -AsPlainText -Force))
    }
    throw "No credential: pass -CredentialPath (Export-Clixml of Get-Credential) or run under systemd with LoadCredential=$($CredentialName):<file>."
}

$exitCode = 1
# Ctrl+C (SIGINT) or a stop skips catch and every line after the try: only finally runs, and pwsh -File then exits 0.
# So finally decides the exit code, and an end that did not pass through the try's last line or the catch is a failure.
$finished = $false
try {
    Import-Module $ModulePath
    $credential = Get-UpgradeCredential
    $dryRun = [bool]$WhatIfPreference
    $result = Invoke-BbRollingUpgrade -ProfilePath $ProfilePath -Credential $credential -Resume:(-not $NoResume) `
        -LogPath $LogPath -Confirm:$false -WhatIf:$dryRun
    if ($dryRun) {
        Write-Output "Plan only (-WhatIf): nothing was changed."
        $result | Out-String -Width 200 | Write-Output
        $exitCode = 0
    }
    elseif ($result.Succeeded) {
        Write-Output $result.Summary
        $exitCode = 0
    }
    else {
        Write-Output $result.Summary
    }
    $finished = $true
}
catch {
    $finished = $true
    $id = $_.FullyQualifiedErrorId
    Write-Output "FAILED ($id): $($_.Exception.Message)"
    [Console]::Error.WriteLine("FAILED ($id): $($_.Exception.Message)")
    Write-RunLine 'error' @{ errorId = $id; message = $_.Exception.Message }
}
finally {
    if ($finished) {
        Write-RunLine 'exit' @{ exitCode = $exitCode }
        exit $exitCode
    }
    # Interrupted: the pipeline is stopping, so any command here (Write-Output, ConvertTo-Json, ...) may throw and
    # skip the exit; only .NET calls are safe.
    $message = 'Interrupted (Ctrl+C or stop) before the upgrade completed. Run this script again: -Resume continues from the journal.'
    [Console]::Error.WriteLine("FAILED (Interrupted): $message")
    $time = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ')
    [IO.File]::AppendAllText($LogPath, ('{{"time":"{0}","kind":"error","command":"Invoke-ScheduledUpgrade.ps1","errorId":"Interrupted","message":"{1}"}}' -f $time, $message) + "`n" +
        ('{{"time":"{0}","kind":"exit","command":"Invoke-ScheduledUpgrade.ps1","exitCode":1}}' -f $time) + "`n")
    # Not 'exit 1': in an advanced script (CmdletBinding) PowerShell ignores an exit in finally while stopping, and
    # pwsh -File still ends with 0. This script always runs in a process of its own (-File), so ending it is safe.
    [Environment]::Exit(1)
}
