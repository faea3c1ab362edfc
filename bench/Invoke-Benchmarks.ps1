<#
.SYNOPSIS
    Benchmarks of the rolling upgrade against simulated clusters. Prints figures; this is not a test.

.DESCRIPTION
    For each cluster size (3 and 12 nodes by default) it sets up the demo's environment (tools/DemoCluster.psm1:
    simulated cluster, release archive, load balancer, profile, steady user traffic), runs Invoke-BbRollingUpgrade and
    prints:
      - per node: the out-of-rotation window against the node's own stop + start time (ratio; target <= 1.05),
        the orchestration overhead (target < 1 s), and how long the engine took to notice the node's state changes
        (target <= 1 s): from the simulator's own log line ("the node left the cluster" / "started; node is ACTIVE")
        to the journal's step-done of wait-offline / health-gate;
      - per size: preflight, pre-staging and total time, and how they grow from the smallest to the largest cluster.
    See bench/README.md for what each figure means.

.PARAMETER ModulePath
    The built module's manifest (build.ps1 Bench passes it).

.PARAMETER Configuration
    Which build of the simulator to use.

.PARAMETER Sizes
    Cluster sizes to run, default 3 and 12.

.PARAMETER StartDelay
    The simulated nodes' start time (bbsim --start-delay). Real nodes take minutes; the default keeps a run short.

.PARAMETER MaxPollMilliseconds
    The profile's Timeouts.MaxPollMilliseconds: the longest interval between the engine's polls (engine default 500).

.PARAMETER LoadBalancer
    Auto (HAProxy when installed, else the simulator's balancer), HAProxy or Bbsim.
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [ValidateSet('Release', 'Debug')] [string] $Configuration = 'Release',
    [int[]] $Sizes = @(3, 12),
    [string] $StartDelay = '2s',
    [ValidateRange(10, 60000)] [int] $MaxPollMilliseconds = 500,
    [ValidateSet('Auto', 'HAProxy', 'Bbsim')] [string] $LoadBalancer = 'Auto'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

Import-Module (Join-Path $PSScriptRoot '../tools/DemoCluster.psm1') -Force
Import-Module (Resolve-BuiltModulePath $ModulePath) -Force

function Sec($t) { if ($null -eq $t) { $null } else { [math]::Round(([TimeSpan] $t).TotalSeconds, 2) } }

function Get-LogTime {
    # The time of the last line of a node's log matching $Pattern (the simulator logs local time, ms precision).
    param([string] $LogPath, [string] $Pattern)
    $line = Select-String -LiteralPath $LogPath -Pattern $Pattern | Select-Object -Last 1
    if (-not $line) { return $null }
    $stamp = $line.Line.Substring(0, 23)
    [DateTimeOffset]::new([DateTime]::ParseExact($stamp, 'yyyy-MM-dd HH:mm:ss,fff', [Globalization.CultureInfo]::InvariantCulture, 'AssumeLocal'))
}

function Measure-RollingUpgrade {
    param([int] $Nodes)
    $name = "bench-$Nodes"
    $demo = New-DemoEnvironment -Bbsim (Get-BbsimPath -Configuration $Configuration) -Root (New-DemoRoot -Prefix 'bbzdu-bench')
    try {
        Write-Host "==> $Nodes nodes: start the simulated cluster, load balancer and traffic" -ForegroundColor Cyan
        $setup = [Diagnostics.Stopwatch]::StartNew()
        Start-DemoCluster -Environment $demo -Nodes $Nodes -StartDelay $StartDelay | Out-Null
        $lb = Start-DemoBalancer -Environment $demo -Kind $LoadBalancer
        $profilePath = New-DemoProfile -Environment $demo -Name $name -MaxPollMilliseconds $MaxPollMilliseconds
        Start-DemoTraffic -Environment $demo -Workers 2 -DelayMs 100 | Out-Null
        Write-Host ("    set-up {0:0.0} s ({1}); upgrading {2} -> {3}; node start delay {4}, engine polls 100 ms -> {5} ms" -f $setup.Elapsed.TotalSeconds, $lb.Kind, $demo.Version, $demo.TargetVersion, $StartDelay, $MaxPollMilliseconds)

        $run = [Diagnostics.Stopwatch]::StartNew()
        $report = Invoke-BbRollingUpgrade -ProfilePath $profilePath -Credential (Get-DemoCredential $demo) -Confirm:$false
        $wall = $run.Elapsed
        $traffic = Stop-DemoTraffic -Environment $demo

        $journalFile = Join-Path (Join-Path $demo.Root 'journal') "$name.journal.jsonl"
        $journal = @(Get-Content -LiteralPath $journalFile | Where-Object { $_.Trim() } | ForEach-Object { $_ | ConvertFrom-Json -DateKind String })
        $doneAt = @{}; $tookMs = @{}
        foreach ($j in $journal) {
            if ($j.Kind -eq 'step-done' -and $j.Step) {
                $doneAt[$j.Step] = [DateTimeOffset]::Parse($j.Time, [Globalization.CultureInfo]::InvariantCulture)
                $tookMs[$j.Step] = $j.DurationMs
            }
        }

        $perNode = foreach ($n in $report.Nodes) {
            $log = Join-Path ($demo.Nodes | Where-Object Name -eq $n.Name).Home 'log/atlassian-bitbucket.log'
            $left = Get-LogTime $log 'the node left the cluster'
            $active = Get-LogTime $log ([regex]::Escape("Bitbucket $($demo.TargetVersion) started; node is ACTIVE"))
            $offlineSeen = $doneAt["$($n.Name)/wait-offline"]
            $activeSeen = $doneAt["$($n.Name)/health-gate"]
            $stopStart = (Sec $n.StopTime) + (Sec $n.StartTime)
            [pscustomobject]@{
                Nodes              = $Nodes
                Node               = $n.Name
                Outcome            = $n.Outcome
                'PreStage s'       = if ($null -ne $tookMs["$($n.Name)/pre-stage"]) { [math]::Round($tookMs["$($n.Name)/pre-stage"] / 1000, 2) } else { $null }
                'Drain s'          = Sec $n.DrainTime
                'Stop s'           = Sec $n.StopTime
                'Start s'          = Sec $n.StartTime
                'Install s'        = Sec $n.InstallTime
                'PutBack s'        = Sec $n.PutBackTime
                'OutOfRotation s'  = Sec $n.OutOfRotation
                'Ratio'            = if ($stopStart -gt 0) { [math]::Round((Sec $n.OutOfRotation) / $stopStart, 3) } else { $null }
                'Overhead s'       = Sec $n.Overhead
                'OFFLINE noticed s' = if ($left -and $offlineSeen) { [math]::Round(($offlineSeen - $left).TotalSeconds, 2) } else { $null }
                'ACTIVE noticed s' = if ($active -and $activeSeen) { [math]::Round(($activeSeen - $active).TotalSeconds, 2) } else { $null }
            }
        }
        [pscustomobject]@{
            Nodes        = $Nodes
            Succeeded    = $report.Succeeded
            FinalState   = $report.FinalState
            'Preflight s' = Sec $report.PreflightDuration
            'PreStage s' = Sec $report.PreStageDuration
            'Total s'    = Sec $report.Duration
            'Per node s' = [math]::Round((Sec $report.Duration) / $Nodes, 2)
            'Wall s'     = Sec $wall
            Requests     = $traffic.Requests
            Failed       = $traffic.Failed
            PerNode      = @($perNode)
        }
    }
    finally {
        Stop-DemoEnvironment -Environment $demo -RemoveRoot
    }
}

$results = foreach ($size in $Sizes) { Measure-RollingUpgrade -Nodes $size }

Write-Host ''
Write-Host '== Per node: out-of-rotation window vs the node''s own stop + start (target ratio <= 1.05), overhead (target < 1 s), state change noticed (target <= 1 s)' -ForegroundColor Cyan
$results.PerNode | Format-Table -Property * -AutoSize | Out-String -Width 250 | Write-Host

Write-Host '== Per cluster size: preflight, pre-staging, total' -ForegroundColor Cyan
$results | Select-Object Nodes, Succeeded, FinalState, 'Preflight s', 'PreStage s', 'Total s', 'Per node s', Requests, Failed | Format-Table -AutoSize | Out-String -Width 250 | Write-Host

if (@($results).Count -ge 2) {
    $a = @($results)[0]; $b = @($results)[-1]
    $f = { param($x, $y) if ($x -gt 0) { '{0:0.00}x' -f ($y / $x) } else { 'n/a' } }
    Write-Host ("Growth {0} -> {1} nodes ({2:0.0}x nodes): preflight {3}, pre-staging {4}, total {5}" -f $a.Nodes, $b.Nodes, ($b.Nodes / $a.Nodes),
        (& $f $a.'Preflight s' $b.'Preflight s'), (& $f $a.'PreStage s' $b.'PreStage s'), (& $f $a.'Total s' $b.'Total s'))
}

$all = @($results.PerNode)
$max = { param($prop) ($all | Where-Object { $null -ne $_.$prop } | Measure-Object $prop -Maximum).Maximum }
Write-Host ("Worst node: ratio {0} (target <= 1.05), overhead {1} s (target < 1), OFFLINE noticed {2} s, ACTIVE noticed {3} s (target <= 1)" -f `
    (& $max 'Ratio'), (& $max 'Overhead s'), (& $max 'OFFLINE noticed s'), (& $max 'ACTIVE noticed s'))
