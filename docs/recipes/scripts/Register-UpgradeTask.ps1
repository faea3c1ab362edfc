<#
.SYNOPSIS
    Registers a Windows scheduled task that runs Invoke-ScheduledUpgrade.ps1 in the maintenance window.

.DESCRIPTION
    Run once, elevated, on the admin host. The credential file is written by the task's account itself (DPAPI: only
    that account on this machine can decrypt it):
        runas /user:CORP\svc-bitbucket-zdu "pwsh -Command Get-Credential admin | Export-Clixml C:\ProgramData\BitbucketZdu\admin.xml"
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [string] $ScriptPath = 'C:\ProgramData\BitbucketZdu\Invoke-ScheduledUpgrade.ps1',
    [string] $ProfilePath = 'C:\ProgramData\BitbucketZdu\prod.psd1',
    [string] $CredentialPath = 'C:\ProgramData\BitbucketZdu\admin.xml',
    [string] $LogPath = 'C:\ProgramData\BitbucketZdu\logs\upgrade.jsonl',
    [Parameter(Mandatory)] [pscredential] $TaskAccount,
    [DateTime] $At = (Get-Date '02:00')
)
$arguments = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$ScriptPath`" -ProfilePath `"$ProfilePath`" -CredentialPath `"$CredentialPath`" -LogPath `"$LogPath`""
$action = New-ScheduledTaskAction -Execute 'pwsh.exe' -Argument $arguments
$trigger = New-ScheduledTaskTrigger -Weekly -DaysOfWeek Sunday -At $At
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 4) -MultipleInstances IgnoreNew -StartWhenAvailable:$false
if ($PSCmdlet.ShouldProcess('BitbucketZdu rolling upgrade', 'Register scheduled task')) {
    Register-ScheduledTask -TaskName 'BitbucketZdu rolling upgrade' -Action $action -Trigger $trigger -Settings $settings `
        -User $TaskAccount.UserName -Password $TaskAccount.GetNetworkCredential().Password -RunLevel Limited
}
# The task's "Last Run Result" is the script's exit code: 0x0 upgraded, 0x1 failed (see the log file).
