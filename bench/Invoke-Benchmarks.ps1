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
      - per node, seen from outside (a separate sampler process, 'bbsim sample', reads HAProxy's 'show servers state'
        and every node's /status each 100 ms): how long the node was out of rotation at the balancer, the node's own
        stop and start from its log, and their difference: what the tool adds to what the node itself needs;
      - per size: preflight, pre-staging and total time, and how they grow from the smallest to the largest cluster,
        and the fewest nodes the sampler saw in rotation at once.
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

.PARAMETER GitWorkers
    Loops of git clones beside the web users: each clones over HTTP and, with HAProxy's SSH frontend, over SSH (the
    simulator streams a clone for --git-duration, 1.5 s), so a node leaves rotation with git work in flight. 0 = web only.
.PARAMETER Simple
    The root-path, plain-HTTP cluster instead of the production-shaped default (context path /bitbucket, HTTPS with
    the demo's internal CA on the nodes and the balancer's front, which the profile and the sampler trust).

.PARAMETER MaxUnavailable
    A separate scenario instead of the default one: the largest of -Sizes (12 by default) upgraded twice, with
    -MaxUnavailable 1 and with this n, printing both totals and their ratio (target <= 0.45 for 3 at -StartDelay 30s),
    failed requests, and the fewest nodes the sampler saw in rotation against the capacity rule (half, rounded up).
    Example: -MaxUnavailable 3 -StartDelay 30s.
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [ValidateSet('Release', 'Debug')] [string] $Configuration = 'Release',
    [int[]] $Sizes = @(3, 12),
    [string] $StartDelay = '2s',
    [ValidateRange(10, 60000)] [int] $MaxPollMilliseconds = 500,
    [ValidateSet('Auto', 'HAProxy', 'Bbsim')] [string] $LoadBalancer = 'Auto',
    [ValidateRange(0, 8)] [int] $GitWorkers = 1,
    [switch] $Simple,
    [ValidateRange(2, 100)] [int] $MaxUnavailable
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

function Start-Sampler {
    # 'bbsim sample' in a process of its own, so what it sees does not depend on the tool's own timing. Ready once it
    # has written a balancer line for every node.
    param($Demo, [string] $Path)
    $lb = $Demo.Balancer
    $status = ($Demo.Nodes | ForEach-Object { "$($_.Name)=$($_.Url)" }) -join ','
    $process = Start-Process -FilePath 'dotnet' -PassThru -RedirectStandardError "$Path.stderr" -RedirectStandardOutput "$Path.stdout" -ArgumentList @(
        $Demo.Bbsim, 'sample', '--admin', ($lb.Endpoint -replace '^tcp://', ''), '--backend', $lb.Backend, '--output', $Path,
        '--status', $status, '--interval-ms', '100'
        if ($ca = Get-DemoCaFile $Demo) { '--ca', $ca })
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (@(Get-Content -LiteralPath $Path -ErrorAction SilentlyContinue | Where-Object { $_ -match "`tlb`t" }).Count -lt @($Demo.Nodes).Count) {
        if ($process.HasExited) { throw "The sampler exited (code $($process.ExitCode)): $(Get-Content "$Path.stderr" -Raw -ErrorAction SilentlyContinue)" }
        if ([DateTime]::UtcNow -gt $deadline) { throw 'The sampler did not see every node at the balancer within 60 s.' }
        Start-Sleep -Milliseconds 100
    }
    $process
}

function Read-Samples {
    param([string] $Path)
    foreach ($line in Get-Content -LiteralPath $Path) {
        $f = $line -split "`t"
        if ($f.Count -ge 4) {
            [pscustomobject]@{ Time = [DateTimeOffset]::Parse($f[0], [Globalization.CultureInfo]::InvariantCulture); Kind = $f[1]; Name = $f[2]; Value = $f[3] }
        }
    }
}

function Measure-RollingUpgrade {
    param([int] $Nodes, [int] $Batch = 1)
    $name = "bench-$Nodes"
    $sampler = $null
    $demo = New-DemoEnvironment -Bbsim (Get-BbsimPath -Configuration $Configuration) -Root (New-DemoRoot -Prefix 'bbzdu-bench')
    try {
        Write-Host "==> $Nodes nodes: start the simulated cluster, load balancer and traffic" -ForegroundColor Cyan
        $setup = [Diagnostics.Stopwatch]::StartNew()
        # Production-shaped unless -Simple: every URL under /bitbucket, HTTPS with the demo's internal CA.
        if ($Simple) { Start-DemoCluster -Environment $demo -Nodes $Nodes -StartDelay $StartDelay | Out-Null }
        else { Start-DemoCluster -Environment $demo -Nodes $Nodes -StartDelay $StartDelay -ContextPath '/bitbucket' -Https | Out-Null }
        $lb = Start-DemoBalancer -Environment $demo -Kind $LoadBalancer
        $profilePath = New-DemoProfile -Environment $demo -Name $name -MaxPollMilliseconds $MaxPollMilliseconds
        Start-DemoTraffic -Environment $demo -Workers 2 -DelayMs 100 -GitWorkers $GitWorkers | Out-Null
        Write-Host ("    set-up {0:0.0} s ({1}{6}); upgrading {2} -> {3}; node start delay {4}, engine polls 100 ms -> {5} ms; 2 web users, {7} git loop(s) per protocol" -f $setup.Elapsed.TotalSeconds, $lb.Kind, $demo.Version, $demo.TargetVersion, $StartDelay, $MaxPollMilliseconds,
            $(if ($lb.PSObject.Properties['SshBackend'] -and $lb.SshBackend) { ' with an SSH backend' } else { '' }), $GitWorkers)

        $samplesPath = Join-Path $demo.Root 'samples.tsv'
        $sampler = Start-Sampler -Demo $demo -Path $samplesPath
        $runStart = [DateTimeOffset]::Now
        $run = [Diagnostics.Stopwatch]::StartNew()
        $report = Invoke-BbRollingUpgrade -ProfilePath $profilePath -Credential (Get-DemoCredential $demo) -Confirm:$false -MaxUnavailable $Batch
        $wall = $run.Elapsed
        $traffic = Stop-DemoTraffic -Environment $demo
        if ($sampler.HasExited) { Write-Warning "The sampler exited during the run (code $($sampler.ExitCode)): its figures are missing. $(Get-Content "$samplesPath.stderr" -Raw -ErrorAction SilentlyContinue)" }
        Stop-Process -Id $sampler.Id -ErrorAction SilentlyContinue; $sampler.WaitForExit(5000) | Out-Null
        $samples = @(Read-Samples $samplesPath)
        $lbEvents = @($samples | Where-Object Kind -eq 'lb')
        # The fewest nodes in rotation at once during the run, replaying the sampler's changes.
        $up = @{}; $minUp = $null
        # A '-' line is a sample the balancer did not answer: it says nothing of any node (and is not one).
        foreach ($e in @($lbEvents | Where-Object Name -ne '-')) {
            $up[$e.Name] = $e.Value -eq 'UP'
            if ($e.Time -ge $runStart -and @($up.Keys).Count -eq $Nodes) {
                $n = @($up.Values | Where-Object { $_ }).Count
                if ($null -eq $minUp -or $n -lt $minUp) { $minUp = $n }
            }
        }

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
            $stopDone = $doneAt["$($n.Name)/stop"]
            $installDone = $doneAt["$($n.Name)/install"]
            $stopStart = (Sec $n.StopTime) + (Sec $n.StartTime)
            # Seen from outside: the balancer's status leaves UP until it is UP again (sampler), the node's own stop
            # (shutdown begun -> left the cluster) and start (process starting -> ACTIVE), from its log.
            $mine = @($lbEvents | Where-Object { $_.Name -eq $n.Name -and $_.Time -ge $runStart })
            $shutdown = Get-LogTime $log 'Shutting down gracefully'
            # The window is the one the node's own shutdown falls in: the last time it left UP before the shutdown (plus
            # 1 s: the sampler sees the take-out up to one interval late, and the shutdown follows the take-out at
            # once). A health-check blip earlier in the run (seen at 12 nodes, load 8) is not it.
            $leaves = @(for ($i = 0; $i -lt $mine.Count; $i++) { if ($mine[$i].Value -ne 'UP' -and ($i -eq 0 -or $mine[$i - 1].Value -eq 'UP')) { $mine[$i] } })
            $outAt = if ($shutdown) { $leaves | Where-Object { $_.Time -le $shutdown.AddSeconds(1) } | Select-Object -Last 1 }
            if (-not $outAt) { $outAt = $leaves | Select-Object -First 1 }
            $inAt = if ($outAt) { $mine | Where-Object { $_.Time -gt $outAt.Time -and $_.Value -eq 'UP' } | Select-Object -First 1 }
            $starting = Get-LogTime $log ([regex]::Escape("Starting Bitbucket $($demo.TargetVersion) "))
            # The node's own start begins when its process was created (a JVM's start-up is Bitbucket's own time too):
            # the upgraded node still runs, so its pid file names it. The log line comes once the runtime is up, which
            # on a loaded machine is seconds later; without the pid the log line is the start.
            $pidFile = Join-Path ($demo.Nodes | Where-Object Name -eq $n.Name).Home 'bitbucket.pid'
            $spawned = try { [DateTimeOffset] (Get-Process -Id ([int] (Get-Content -LiteralPath $pidFile -Raw).Trim()) -ErrorAction Stop).StartTime } catch { $null }
            if (-not $spawned -or -not $starting -or $spawned -gt $starting) { $spawned = $starting }
            $ownStop = if ($shutdown -and $left) { ($left - $shutdown).TotalSeconds }
            $ownStart = if ($spawned -and $active) { ($active - $spawned).TotalSeconds }
            $window = if ($outAt -and $inAt) { ($inAt.Time - $outAt.Time).TotalSeconds }
            $r2 = { param($x) if ($null -ne $x) { [math]::Round($x, 2) } }
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
                'Ext out s'        = & $r2 $window
                'Own stop s'       = & $r2 $ownStop
                'Own start s'      = & $r2 $ownStart
                'Ext diff s'       = if ($null -ne $window -and $null -ne $ownStop -and $null -ne $ownStart) { & $r2 ($window - $ownStop - $ownStart) }
                'Out->stop s'      = if ($outAt -and $shutdown) { & $r2 ($shutdown - $outAt.Time).TotalSeconds }
                'Gone->start s'    = if ($left -and $spawned) { & $r2 ($spawned - $left).TotalSeconds }
                'Runtime up s'     = if ($spawned -and $starting) { & $r2 ($starting - $spawned).TotalSeconds }
                'ACTIVE->in s'     = if ($active -and $inAt) { & $r2 ($inAt.Time - $active).TotalSeconds }
                # The two tool-side parts in pieces, from the journal's step-done times against the node's log.
                'Exit seen s'      = if ($left -and $stopDone) { & $r2 ($stopDone - $left).TotalSeconds }
                'Offline+inst s'   = if ($stopDone -and $installDone) { & $r2 ($installDone - $stopDone).TotalSeconds }
                'Start cmd s'      = if ($installDone -and $spawned) { & $r2 ($spawned - $installDone).TotalSeconds }
                'Gate seen s'      = if ($active -and $activeSeen) { & $r2 ($activeSeen - $active).TotalSeconds }
                'Put back s'       = if ($activeSeen -and $inAt) { & $r2 ($inAt.Time - $activeSeen).TotalSeconds }
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
            'Git HTTP'   = "$($traffic.GitHttp) ($($traffic.GitHttpFailed) failed)"
            'Git SSH'    = "$($traffic.GitSsh) ($($traffic.GitSshFailed) failed)"
            Failures     = @($traffic.Failures)
            'Min in rotation' = $minUp
            PerNode      = @($perNode)
        }
    }
    finally {
        if ($sampler -and -not $sampler.HasExited) { Stop-Process -Id $sampler.Id -ErrorAction SilentlyContinue }
        Stop-DemoEnvironment -Environment $demo -RemoveRoot
    }
}

if ($MaxUnavailable) {
    # The -MaxUnavailable scenario: the same cluster size one node at a time, then in batches of n.
    $size = ($Sizes | Measure-Object -Maximum).Maximum
    $rule = [math]::Ceiling($size / 2)
    $pair = foreach ($batch in 1, $MaxUnavailable) { $r = Measure-RollingUpgrade -Nodes $size -Batch $batch; $r | Add-Member -NotePropertyName MaxUnavailable -NotePropertyValue $batch -PassThru }
    Write-Host ''
    Write-Host ("== -MaxUnavailable: {0} nodes, node start delay {1}; the capacity rule needs at least {2} in rotation" -f $size, $StartDelay, $rule) -ForegroundColor Cyan
    $pair | Select-Object MaxUnavailable, Nodes, Succeeded, FinalState, 'PreStage s', 'Total s', 'Wall s', Requests, Failed, 'Min in rotation' | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
    $one = @($pair)[0]; $many = @($pair)[1]
    Write-Host ("Total with -MaxUnavailable {0}: {1:0.0} s = {2:0.00} x the {3:0.0} s with 1 (target <= 0.45); failed requests {4} and {5} (target 0); fewest in rotation {6} and {7} (rule: >= {8})" -f `
        $MaxUnavailable, $many.'Total s', ($many.'Total s' / $one.'Total s'), $one.'Total s', $one.Failed, $many.Failed, $one.'Min in rotation', $many.'Min in rotation', $rule)
    return
}

$results = foreach ($size in $Sizes) { Measure-RollingUpgrade -Nodes $size }

Write-Host ''
Write-Host '== Per node: out-of-rotation window vs the node''s own stop + start (target ratio <= 1.05), overhead (target < 1 s), state change noticed (target <= 1 s)' -ForegroundColor Cyan
$engine = 'Nodes', 'Node', 'Outcome', 'PreStage s', 'Drain s', 'Stop s', 'Start s', 'Install s', 'PutBack s', 'OutOfRotation s', 'Ratio', 'Overhead s', 'OFFLINE noticed s', 'ACTIVE noticed s'
$results.PerNode | Format-Table -Property $engine -AutoSize | Out-String -Width 250 | Write-Host
Write-Host '== Per node, seen from outside (sampler every 100 ms): out of rotation at the balancer vs the node''s own stop + start (target: difference median <= 0.4 s, none above 0.8 s)' -ForegroundColor Cyan
$results.PerNode | Format-Table -Property Nodes, Node, 'Ext out s', 'Own stop s', 'Own start s', 'Ext diff s', 'Out->stop s', 'Gone->start s', 'ACTIVE->in s', 'Runtime up s' -AutoSize | Out-String -Width 250 | Write-Host
Write-Host '== Per node, the parts in pieces (journal step-done against the node''s log): Gone->start = exit seen + offline/install + start command; ACTIVE->in = gate seen + put back' -ForegroundColor Cyan
$results.PerNode | Format-Table -Property Nodes, Node, 'Gone->start s', 'Exit seen s', 'Offline+inst s', 'Start cmd s', 'ACTIVE->in s', 'Gate seen s', 'Put back s' -AutoSize | Out-String -Width 250 | Write-Host

Write-Host '== Per cluster size: preflight, pre-staging, total' -ForegroundColor Cyan
$results | Select-Object Nodes, Succeeded, FinalState, 'Preflight s', 'PreStage s', 'Total s', 'Per node s', Requests, Failed, 'Min in rotation' | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
foreach ($r in $results) { Write-Host "Git clones at $($r.Nodes) nodes: over HTTP $($r.'Git HTTP'), over SSH $($r.'Git SSH')" }
foreach ($r in @($results | Where-Object { @($_.Failures).Count })) { Write-Host "Failed requests at $($r.Nodes) nodes: $(@($r.Failures) -join ' | ')" -ForegroundColor Yellow }

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
$diffs = @($all | Where-Object { $null -ne $_.'Ext diff s' } | ForEach-Object { $_.'Ext diff s' } | Sort-Object)
if ($diffs.Count) {
    $median = if ($diffs.Count % 2) { $diffs[[int][math]::Floor($diffs.Count / 2)] } else { ($diffs[$diffs.Count / 2 - 1] + $diffs[$diffs.Count / 2]) / 2 }
    Write-Host ("Seen from outside: out of rotation - (own stop + start) median {0:0.00} s (target <= 0.4), worst {1:0.00} s (target <= 0.8), over {2} node(s)" -f $median, $diffs[-1], $diffs.Count)
}
