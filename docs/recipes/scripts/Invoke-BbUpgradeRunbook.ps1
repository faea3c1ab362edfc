<#
.SYNOPSIS
    Azure Automation runbook (PowerShell 7.4 or 5.1 runtime): a rolling upgrade of Bitbucket Data Center with output that
    reads well in the job log.

.DESCRIPTION
    - The Bitbucket system administrator comes from an Automation credential asset (Get-AutomationPSCredential).
    - The cluster profile is the text of an Automation variable (a .psd1 as text): the job's disk is temporary, so the
      runbook writes it to the sandbox's temp folder. Its Application Gateway load balancer uses the Automation
      account's managed identity (Kind = 'AzureAppGateway'; Settings.Authentication = 'ManagedIdentity'): no secret
      for Azure Resource Manager anywhere.
    - Output: one line per node and the summary (Write-Output), no progress records; the job fails (throw) when the
      upgrade did not complete, so alerts on failed jobs fire.
    - The journal and its lock live in Azure Storage (the profile's Journal = @{ Uri = ...; Authentication =
      'ManagedIdentity' }, or -JournalUri): the sandbox's disk is gone when the job ends, the blob is not. The lock is
      a lease on the journal blob: a job restarted while a dead job's lease holds waits for it to expire; a second job
      while another renews it stops with JournalLocked after that wait.
    - Run it again after a failure or an unload: -Resume continues from the journal where the last job stopped.

.PARAMETER JournalUri
    The journal container (https://<account>.blob.core.windows.net/<container>); default: the profile's Journal.Uri.

.PARAMETER JournalCredentialName
    An Automation credential asset for the journal container: user name = storage account, password = access key
    (SharedKey), or password = a SAS (with -JournalAuthentication Sas). Empty (the default): the managed identity.

.PARAMETER JournalAuthentication
    ManagedIdentity, SharedKey, Sas or Token; default: the profile's, else SharedKey with a credential, else ManagedIdentity.
#>
param(
    [string] $CredentialName = 'BitbucketSysadmin',
    [string] $ProfileVariableName = 'BitbucketZduProfile',
    [string] $JournalUri = '',
    [string] $JournalCredentialName = '',
    [string] $JournalAuthentication = '',
    [bool] $PlanOnly = $false
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'   # progress records are noise in the job log
$VerbosePreference = 'SilentlyContinue'

$credential = Get-AutomationPSCredential -Name $CredentialName
$profileText = Get-AutomationVariable -Name $ProfileVariableName
$profilePath = Join-Path ([IO.Path]::GetTempPath()) 'bitbucket-zdu-profile.psd1'
Set-Content -LiteralPath $profilePath -Value $profileText -Encoding utf8
$logPath = Join-Path ([IO.Path]::GetTempPath()) 'bitbucket-zdu-upgrade.jsonl'

$journal = @{}
if ($JournalUri) { $journal.JournalUri = $JournalUri }
if ($JournalCredentialName) { $journal.JournalCredential = Get-AutomationPSCredential -Name $JournalCredentialName }
if ($JournalAuthentication) { $journal.JournalAuthentication = $JournalAuthentication }

# A stop, Ctrl+C or an unload skips catch and everything after the try; only finally runs, and pwsh -File would then
# exit 0. So finally fails the job whenever the end was not reached (exit 1: a throw there does not change the exit code).
$finished = $false
try {
    Write-Output "BitbucketZdu $((Get-Module BitbucketZdu -ListAvailable | Select-Object -First 1).Version): rolling upgrade as $($credential.UserName)$(if ($PlanOnly) { ' (plan only)' })."
    try {
        $result = Invoke-BbRollingUpgrade -ProfilePath $profilePath -Credential $credential -Resume -Confirm:$false `
            -LogPath $logPath -WhatIf:$PlanOnly @journal
    }
    catch {
        $finished = $true
        Write-Output "FAILED ($($_.FullyQualifiedErrorId)): $($_.Exception.Message)"
        throw
    }

    if ($PlanOnly) {
        Write-Output ($result | Out-String -Width 160).TrimEnd()
    }
    else {
        foreach ($node in $result.Nodes) {
            $took = if ($node.Total) { ' in {0:0.0} s' -f $node.Total.TotalSeconds } else { '' }
            Write-Output ("  {0}. {1}: {2} {3} -> {4}{5}{6}" -f $node.Order, $node.Name, $node.Outcome, $node.FromVersion, $node.ToVersion, $took,
                $(if ($node.Error) { " ($($node.Error))" }))
        }
        Write-Output $result.Summary
        Write-Output "Journal: $($result.JournalPath)$(if ($result.Resumed) { ' (resumed run ' + $result.RunId + ')' })"
        $finished = $true
        if (-not $result.Succeeded) { throw "The upgrade did not complete: $($result.NextStep)" }
    }
    $finished = $true
}
finally {
    Remove-Item -LiteralPath $profilePath -ErrorAction SilentlyContinue
    if (-not $finished) {
        # The pipeline is stopping: Write-Output would throw here, stderr still works.
        [Console]::Error.WriteLine('FAILED (Interrupted): the job was stopped before the upgrade completed. Start the runbook again: it resumes from the journal.')
        exit 1
    }
}
