<#
.SYNOPSIS
    The one-command demo: a zero-downtime rolling upgrade of a simulated 3-node Bitbucket Data Center cluster under
    steady user traffic.

.DESCRIPTION
    Starts a 3-node simulated cluster (8.19.3) on free loopback ports, builds the 8.19.4 release archive and its
    SHA-256, puts a load balancer in front (real HAProxy when installed, else the simulator's loopback balancer that
    speaks HAProxy's runtime API), writes a cluster profile for it, sends steady user traffic through the load
    balancer, runs Invoke-BbRollingUpgrade with live progress, prints the report with the web and git counts (ok and
    failed), and stops everything it started (also on Ctrl+C or failure).

    The cluster is production-shaped: every URL under the context path /bitbucket, HTTPS on the node ports and on the
    balancer's front with a demo CA made at start (bbsim certs; the profile trusts it with Tls.TrustedCertificatePath),
    a git-over-SSH port per node, and a balancer with an HTTP and an SSH backend, each node a member of both and
    drained on both. Users do web GETs and git clones over HTTP (/bitbucket/scm/...) and over SSH.

    Exit code 0 only when 3/3 nodes were upgraded, the cluster is STABLE on 8.19.4 and no web request or git clone failed.
    Run it through the build: dotnet pwsh ./build.ps1 Demo

.PARAMETER ModulePath
    The built module's manifest (build.ps1 passes out/BitbucketZdu/<version>/BitbucketZdu.psd1).

.PARAMETER Configuration
    Which build of the simulator to use (src/BitbucketZdu.Simulator/bin/<Configuration>).

.PARAMETER LoadBalancer
    Auto (HAProxy when installed, else the simulator's balancer), HAProxy or Bbsim.

.PARAMETER Simple
    The root-path, plain-HTTP cluster with one HTTP backend and web GETs only (the demo as it was first written).

.PARAMETER KeepRoot
    Keep the demo's temp folder (node logs, journal, profile) even after a successful run. A failed run always keeps it.
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [ValidateSet('Release', 'Debug')] [string] $Configuration = 'Release',
    [ValidateSet('Auto', 'HAProxy', 'Bbsim')] [string] $LoadBalancer = 'Auto',
    [switch] $KeepRoot,
    [switch] $Simple
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'Continue'

Import-Module (Join-Path $PSScriptRoot 'DemoCluster.psm1') -Force
Import-Module (Resolve-BuiltModulePath $ModulePath) -Force

function Write-Step([string] $Message) { Write-Host "==> $Message" -ForegroundColor Cyan }

$clock = [Diagnostics.Stopwatch]::StartNew()
$demo = New-DemoEnvironment -Bbsim (Get-BbsimPath -Configuration $Configuration) -Root (New-DemoRoot)
$passed = $false
try {
    Write-Step "Start a 3-node simulated cluster on $($demo.Version) under $($demo.Root)"
    Start-DemoCluster -Environment $demo -Nodes 3 -Simple:$Simple -ContextPath '/bitbucket' -Https | Format-Table Name, Url, SshPort, InstallRoot -AutoSize | Out-Host
    if ($caFile = Get-DemoCaFile $demo) { Write-Host "Demo CA (trusted by the profile's Tls.TrustedCertificatePath): $caFile" }
    Write-Host "Release archive: $($demo.Archive) (sha256 $($demo.Sha256.Substring(0, 16))...)"

    $lb = Start-DemoBalancer -Environment $demo -Kind $LoadBalancer
    Write-Step "Load balancer: $($lb.Kind) at $($lb.FrontUrl), runtime API $($lb.Endpoint), backend '$($lb.Backend)'$(if ($lb.SshBackend) { ", git over SSH at 127.0.0.1:$($lb.SshPort), backend '$($lb.SshBackend)'" })"

    $profilePath = New-DemoProfile -Environment $demo
    Write-Step "Cluster profile: $profilePath"
    $credential = Get-DemoCredential -Environment $demo

    $gitWorkers = if ($Simple) { 0 } else { 2 }
    Write-Step "Steady user traffic through the load balancer (3 users, GET $($demo.ContextPath)/?delayMs=100$(if ($gitWorkers) { "; $gitWorkers cloning over HTTP$(if ($lb.SshBackend) { ", $gitWorkers over SSH" })" }))"
    Start-DemoTraffic -Environment $demo -Workers 3 -DelayMs 100 -GitWorkers $gitWorkers | Out-Null

    Write-Step "Invoke-BbRollingUpgrade -ProfilePath $profilePath -Confirm:`$false  ($($demo.Version) -> $($demo.TargetVersion))"
    $hook = @{
        '*' = {
            $t = Get-DemoTrafficCount -Environment $demo
            Write-Host ('  {0:HH:mm:ss.f}  {1,-18} {2,-7} {3}   [requests {4}, failed {5}; clones http {6}/{7} ssh {8}/{9} failed]' -f [DateTime]::Now, $_.Phase, $_.Node, $_.Message, $t.Requests, $t.Failed, $t.GitHttp, $t.GitHttpFailed, $t.GitSsh, $t.GitSshFailed)
        }
    }
    $upgradeError = $null
    $report = $null
    try {
        Invoke-BbRollingUpgrade -ProfilePath $profilePath -Credential $credential -Confirm:$false -Hook $hook -OutVariable reportOut | Out-Null
    }
    catch {
        $upgradeError = $_
    }
    $report = @($reportOut) | Where-Object { $_ -is [BitbucketZdu.Core.Upgrade.Report.UpgradeReport] } | Select-Object -Last 1

    # Users keep working after the run: a second of traffic on the upgraded cluster, then stop and count.
    Start-Sleep -Seconds 1
    $traffic = Stop-DemoTraffic -Environment $demo

    $trust = if ($caFile) { @{ TrustedCertificatePath = $caFile } } else { @{} }
    Connect-BbCluster -Uri $lb.FrontUrl -Credential $credential @trust | Out-Null
    $cluster = Get-BbClusterStatus
    $nodes = @(Get-BbNode)
    Disconnect-BbCluster

    Write-Step 'Report'
    if ($report) {
        $s = { param($t) if ($null -eq $t) { '' } else { '{0:0.00}' -f ([TimeSpan] $t).TotalSeconds } }
        $report | Format-List Cluster, RunId, FromVersion, TargetVersion, Succeeded, FinalState,
        @{ n = 'Total s'; e = { & $s $_.Duration } }, @{ n = 'Preflight s'; e = { & $s $_.PreflightDuration } },
        @{ n = 'Pre-staging s'; e = { & $s $_.PreStageDuration } }, Error, NextStep | Out-Host
        Write-Host 'Per node, in seconds (Out = out of rotation, from drained until back in and healthy; Overhead = the tool''s own cost):'
        $report.Nodes | Format-Table @{ n = '#'; e = 'Order' }, Name, Outcome, @{ n = 'From'; e = 'FromVersion' }, @{ n = 'To'; e = 'ToVersion' },
        @{ n = 'Drain'; e = { & $s $_.DrainTime } }, @{ n = 'Stop'; e = { & $s $_.StopTime } }, @{ n = 'Start'; e = { & $s $_.StartTime } },
        @{ n = 'Out'; e = { & $s $_.OutOfRotation } }, @{ n = 'Overhead'; e = { & $s $_.Overhead } } -AutoSize | Out-Host
        Write-Host $report.Summary
    }
    if ($upgradeError) { Write-Host "Invoke-BbRollingUpgrade failed: [$($upgradeError.FullyQualifiedErrorId)] $($upgradeError.Exception.Message)" -ForegroundColor Red }
    Write-Host ''
    Write-Host "Cluster now: $($cluster.State), upgrade mode $(if ($cluster.UpgradeModeEnabled) { 'on' } else { 'off' }); nodes: $(($nodes | ForEach-Object { "$($_.Name) $($_.State) $($_.Version)" }) -join ', ')"
    Write-Host "Through the load balancer in $($traffic.Seconds) s:"
    Write-Host ("  web requests:        {0,5} ok, {1} failed" -f ($traffic.Requests - $traffic.Failed), $traffic.Failed)
    if ($gitWorkers) {
        Write-Host ("  git clones over HTTP: {0,4} ok, {1} failed" -f ($traffic.GitHttp - $traffic.GitHttpFailed), $traffic.GitHttpFailed)
        if ($lb.SshBackend) { Write-Host ("  git clones over SSH:  {0,4} ok, {1} failed" -f ($traffic.GitSsh - $traffic.GitSshFailed), $traffic.GitSshFailed) }
    }
    foreach ($f in $traffic.Failures) { Write-Host "  failed: $f" -ForegroundColor Red }

    $upgraded = if ($report) { $report.NodesUpgraded } else { 0 }
    $onTarget = @($nodes | Where-Object { $_.Version -eq $demo.TargetVersion -and "$($_.State)" -eq 'ACTIVE' }).Count
    $passed = -not $upgradeError -and $upgraded -eq 3 -and "$($cluster.State)" -eq 'STABLE' -and $onTarget -eq 3 -and
        $traffic.Failed -eq 0 -and $traffic.Requests -gt 0 -and
        (-not $gitWorkers -or ($traffic.GitHttpFailed -eq 0 -and $traffic.GitSshFailed -eq 0 -and $traffic.GitHttp -gt 0 -and $lb.SshBackend -and $traffic.GitSsh -gt 0))
    Write-Host ''
    $gitFigures = if ($gitWorkers) { ", git clones over HTTP $($traffic.GitHttp) ($($traffic.GitHttpFailed) failed) and over SSH $($traffic.GitSsh) ($($traffic.GitSshFailed) failed)" } else { '' }
    $verdict = '{0}: {1}/3 nodes upgraded, cluster {2} with {3}/3 nodes ACTIVE on {4}, {5} requests, {6} failed{8}, {7:0.0} s in all.' -f `
    $(if ($passed) { 'DEMO PASSED' } else { 'DEMO FAILED' }), $upgraded, $cluster.State, $onTarget, $demo.TargetVersion, $traffic.Requests, $traffic.Failed, $clock.Elapsed.TotalSeconds, $gitFigures
    Write-Host $verdict -ForegroundColor $(if ($passed) { 'Green' } else { 'Red' })
}
finally {
    Write-Step 'Stop the load balancer, the traffic and the simulated nodes'
    Stop-DemoEnvironment -Environment $demo -RemoveRoot:($passed -and -not $KeepRoot)
    if (-not $passed -or $KeepRoot) { Write-Host "Logs, journal and profile kept in $($demo.Root)" }
}
if (-not $passed) { exit 1 }
