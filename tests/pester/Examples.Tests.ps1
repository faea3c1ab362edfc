# The examples of the shipped help really run: for every exported cmdlet, the examples of `Get-Help <cmdlet> -Examples`
# (the built MAML, not the markdown) run against simulated clusters, each in a fresh runspace after the prelude that
# docs/development.md describes ("Runnable help examples"). An example whose remarks say "Not runnable on the
# simulated cluster: <reason>" is skipped visibly; every cmdlet needs at least two that run.
#
# Three clusters, walked at the same time (a thread job each), each in a fixed order because examples change state:
#   main     read-only examples, upgrade mode on and off, load-balancer members out and back in, profiles
#   nodes    node work over SSH (loopback sshd) on node-1 with upgrade mode on: inspect, pre-stage, configure,
#            stop, start the new version, roll back, and again through pipelines
#   upgrade  rolling upgrades 8.19.3 -> 8.19.4 -> 8.19.5 -> 8.19.6 -> 8.19.7 (Invoke-BbRollingUpgrade; #4 pauses with
#            -StopAfter 1, then -Resume), node by node to 8.19.8 and 8.19.9 (Invoke-BbNodeUpgrade) and finalization
#            (Complete-BbRollingUpgrade), ending STABLE on 8.19.9
BeforeDiscovery {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    . (Join-Path $PSScriptRoot 'ExamplePlan.ps1')
    $plan = Get-ExamplePlan
    $script:Runs = $plan.Runs
    $script:Unplanned = $plan.Unplanned
    $script:Skipped = $plan.Skipped
    $script:CmdletNames = $plan.Cmdlets
}

BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    . (Join-Path $PSScriptRoot 'ExamplePlan.ps1')
    $plan = Get-ExamplePlan
    $script:Runs = $plan.Runs
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-ex-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
    $script:Timer = [Diagnostics.Stopwatch]::StartNew()
    $context = @{
        Dir = $Dir; Password = 'Example-P4ss-1'; Module = $env:BITBUCKETZDU_MODULE
        SimModule = (Join-Path $PSScriptRoot 'SimCluster.psm1'); Ssh = (Start-SimSshd -Root (Join-Path $Dir 'sshd'))
    }
    $script:Ssh = $context.Ssh
    # Results by example key ("<Cmdlet>#<n>" = @{ Error; Seconds }, "final:<cluster>"), filled by the walks.
    $script:Shared = [hashtable]::Synchronized(@{})

    # One cluster's walk: start it, run its examples in order (each in a fresh runspace after the prelude), check the end.
    $walk = {
        param([string] $ClusterName, [object[]] $Runs, $Context, $Shared)
        $ErrorActionPreference = 'Stop'
        $walkClock = [Diagnostics.Stopwatch]::StartNew()
        $env:BITBUCKETZDU_MODULE = $Context.Module
        Import-Module $Context.SimModule -Force
        $Dir = $Context.Dir; $Password = $Context.Password; $Ssh = $Context.Ssh

        function Get-ExampleProfile($Cluster) {
            # A profile of the cluster for its current target version (bbsim dist builds the release archive once per version).
            if (-not $Cluster.Profiles[$Cluster.Target]) {
                $folder = Join-Path $Cluster.Root "profile-$($Cluster.Target)"
                New-Item -ItemType Directory -Path $folder -Force | Out-Null
                $Cluster.Profiles[$Cluster.Target] = New-SimProfile -Manifest $Cluster.Sim -Root $folder -Balancer $Cluster.Balancer -Path (Join-Path $folder 'prod.psd1') -TargetVersion $Cluster.Target
            }
            $Cluster.Profiles[$Cluster.Target]
        }

        # The prelude every example runs after (docs/development.md, "Runnable help examples").
        function New-Prelude($Cluster, [string] $WorkDir) {
            $profilePath = Get-ExampleProfile $Cluster
            $archive = Get-ChildItem (Join-Path (Split-Path $profilePath) 'dist-target') -Filter '*.tar.gz' | Select-Object -First 1
            Copy-Item $profilePath (Join-Path $WorkDir 'prod.psd1')
            Copy-Item $archive.FullName, "$($archive.FullName).sha256" $WorkDir
            $node1 = $Cluster.Sim.nodes[0]
            $q = { param($s) "'" + ([string] $s).Replace("'", "''") + "'" }
            @"
    `$ErrorActionPreference = 'Stop'
    `$ProgressPreference = 'SilentlyContinue'
    `$ConfirmPreference = 'None'
    Import-Module $(& $q $env:BITBUCKETZDU_MODULE)
    Set-Location $(& $q $WorkDir)
    `$uri = 'http://127.0.0.1:$($Cluster.Balancer.ListenPort)'
    `$cred = [pscredential]::new('admin', (ConvertTo-SecureString $(& $q $Password) -AsPlainText -Force))
    `$admin = `$cred
    function Get-Credential { `$cred }
    `$haproxyAdmin = 'tcp://127.0.0.1:$($Cluster.Balancer.AdminPort)'
    `$lb = New-BbLoadBalancer -Kind HAProxy -Endpoint `$haproxyAdmin -Backend bitbucket
    `$node = @{ HostName = '127.0.0.1'; Port = $($Ssh.Port); UserName = $(& $q $Ssh.UserName); KeyFilePath = $(& $q $Ssh.KeyFile); Transport = 'Ssh'; SshOption = @{ UserKnownHostsFile = $(& $q $Ssh.KnownHostsFile) } }
    `$old = $(& $q $node1.installDir)
    `$new = $(& $q (Join-Path (Split-Path $node1.installDir) "atlassian-bitbucket-$($Cluster.Target)"))
    `$archive = $(& $q (Join-Path $WorkDir $archive.Name))
    `$sha = (Get-FileHash `$archive -Algorithm SHA256).Hash
    Connect-BbCluster -Uri `$uri -Credential `$cred
"@
        }

        # Stand-ins: what the examples show of the user's world, and what replaces it here (docs/development.md).
        function Get-StandIn($Cluster) {
            $uri = "'http://127.0.0.1:$($Cluster.Balancer.ListenPort)'"
            [ordered]@{
                'https://bitbucket.example.com'   = $uri
                'https://bb-prod.example.com'     = $uri
                'https://bb-test.example.com'     = $uri
                "@{ HostName = 'bb1.example.com'; UserName = 'root'; KeyFilePath = '~/.ssh/bbzdu'; Transport = 'Ssh' }" = '$node'
                '/opt/atlassian/bitbucket/8.19.3' = '$old'
            }
        }

        function Invoke-Example($Cluster, [string] $Code, [string] $Where, [string] $Setup, [int] $TimeoutSec = 90) {
            $work = Join-Path $Cluster.Root ('work-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
            New-Item -ItemType Directory -Path $work | Out-Null
            $prelude = New-Prelude $Cluster $work
            if ($Setup) { $prelude += [Environment]::NewLine + $Setup }
            $standIn = Get-StandIn $Cluster
            foreach ($k in $standIn.Keys) { $Code = $Code.Replace($k, $standIn[$k]) }
            $runspace = [runspacefactory]::CreateRunspace()
            $runspace.Open()
            $ps = [powershell]::Create()
            $ps.Runspace = $runspace
            try {
                $null = $ps.AddScript($prelude + [Environment]::NewLine + $Code + [Environment]::NewLine + '$null = Disconnect-BbCluster')
                $async = $ps.BeginInvoke()
                if (-not $async.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds($TimeoutSec))) {
                    $ps.Stop()
                    throw "$Where did not finish within $TimeoutSec s."
                }
                try { $output = $ps.EndInvoke($async) }
                catch { throw "$Where failed: $($_.Exception.InnerException.Message ?? $_.Exception.Message)`n$Code" }
                $errors = @($ps.Streams.Error)
                if ($errors) { throw "$Where wrote errors: $(($errors | ForEach-Object { "$($_.FullyQualifiedErrorId): $_" }) -join '; ')`n$Code" }
                $output
            }
            finally { $ps.Dispose(); $runspace.Dispose() }
        }

        # What an example needs before it (state a previous example does not leave) and puts back after it.
        $Targets = @{ 'Invoke-BbRollingUpgrade#2' = '8.19.5'; 'Invoke-BbRollingUpgrade#3' = '8.19.6'; 'Invoke-BbRollingUpgrade#4' = '8.19.7'; 'Invoke-BbNodeUpgrade#1' = '8.19.8'; 'Complete-BbRollingUpgrade#2' = '8.19.9' }
        $Before = @{
            'Disable-BbUpgradeMode#1'      = 'Enable-BbUpgradeMode -Confirm:$false | Out-Null'
            'Disable-BbUpgradeMode#2'      = 'Enable-BbUpgradeMode -Confirm:$false | Out-Null'
            'New-BbClusterProfile#1'       = 'Remove-Item ./prod.psd1'
            # Complete#2 finalizes again: bring every node to 8.19.9 first.
            'Complete-BbRollingUpgrade#2+' = 'Enable-BbUpgradeMode | Out-Null; (Get-BbClusterStatus).Nodes | Invoke-BbNodeUpgrade -ProfilePath ./prod.psd1 | Out-Null'
        }
        $After = @{
            'Enable-BbUpgradeMode#1'         = 'Disable-BbUpgradeMode -Confirm:$false | Out-Null'
            'Enable-BbUpgradeMode#3'         = 'Disable-BbUpgradeMode -Confirm:$false | Out-Null'
            'Remove-BbNodeFromLoadBalancer#1' = 'Add-BbNodeToLoadBalancer -LoadBalancer $lb -Member node-2 | Out-Null'
        }

        try {
            $root = Join-Path $Dir $ClusterName
            $Shared["root:$ClusterName"] = $root
            $sim = Start-SimCluster -Root $root -Nodes 2 -Password $Password
            $c = [pscustomobject]@{ Name = $ClusterName; Root = $root; Sim = $sim; Balancer = $null; Target = '8.19.4'; Profiles = @{} }
            $c.Balancer = Start-SimBalancer -Manifest $sim
            $Shared["balancer:$ClusterName"] = $c.Balancer
            if ($ClusterName -eq 'nodes') { Invoke-Example -Cluster $c -Code 'Enable-BbUpgradeMode -Confirm:$false | Out-Null' -Where 'set-up' | Out-Null }
        }
        catch {
            foreach ($run in $Runs) { $Shared[$run.Key] = @{ Error = "The $ClusterName cluster did not start: $_"; Seconds = 0 } }
            return
        }
        foreach ($run in $Runs) {
            $clock = [Diagnostics.Stopwatch]::StartNew()
            try {
                if ($Targets[$run.Key]) { $c.Target = $Targets[$run.Key] }
                $setup = @($Before[$run.Key], $Before["$($run.Key)+"]) | Where-Object { $_ }
                Invoke-Example -Cluster $c -Code $run.Code -Setup ($setup -join [Environment]::NewLine) -Where "Example $($run.Key)" | Out-Null
                if ($After[$run.Key]) { Invoke-Example -Cluster $c -Code $After[$run.Key] -Where "clean-up of $($run.Key)" | Out-Null }
                $Shared[$run.Key] = @{ Error = $null; Seconds = $clock.Elapsed.TotalSeconds }
            }
            catch { $Shared[$run.Key] = @{ Error = "$_"; Seconds = $clock.Elapsed.TotalSeconds } }
        }
        try {
            $final = if ($ClusterName -eq 'nodes') { Invoke-Example -Cluster $c -Code 'Get-BbNode -Name node-1' -Where 'final check' }
            else { Invoke-Example -Cluster $c -Code 'Get-BbClusterStatus' -Where 'final check' }
            $Shared["final:$ClusterName"] = @{ State = "$($final.State)"; Versions = @($final.Version) + @($final.Nodes | ForEach-Object { "$($_.Version)" }) | Where-Object { $_ } }
        }
        catch { $Shared["final:$ClusterName"] = @{ Error = "$_" } }
        $Shared["walk:$ClusterName"] = [int] $walkClock.Elapsed.TotalSeconds
    }

    $script:Jobs = @{}
    foreach ($name in $plan.Clusters) {
        $clusterRuns = @($plan.Runs | Where-Object { $_.Cluster -eq $name })
        $Jobs[$name] = Start-ThreadJob -ScriptBlock $walk -ArgumentList $name, $clusterRuns, $context, $Shared -Name "examples-$name"
    }

    function script:Wait-ExampleResult([string] $Key, [string] $Cluster) {
        # Waits for the walk to report this key (a job wait with a timeout, not a sleep).
        $deadline = [DateTime]::UtcNow.AddMinutes(8)
        while (-not $Shared.ContainsKey($Key)) {
            $job = $Jobs[$Cluster]
            # NotStarted is not an end: under load the thread job can still be queued when the first example asks.
            if ($job.State -in 'Completed', 'Failed', 'Stopped' -and -not $Shared.ContainsKey($Key)) {
                throw "The $Cluster walk ended ($($job.State)) without a result for ${Key}: $((Receive-Job $job -Keep 2>&1) -join '; ')"
            }
            if ([DateTime]::UtcNow -gt $deadline) { throw "No result for $Key within 8 minutes." }
            Wait-Job $job -Timeout 1 | Out-Null
        }
        $Shared[$Key]
    }
}

AfterAll {
    $Jobs.Values | Wait-Job -Timeout 60 | Out-Null
    $Jobs.Values | Stop-Job -PassThru | Remove-Job -Force
    foreach ($k in @($Shared.Keys)) {
        if ($k -like 'balancer:*') { Stop-SimBalancer $Shared[$k] }
        if ($k -like 'root:*') { Stop-SimCluster -Root $Shared[$k] }
    }
    Stop-SimSshd $Ssh
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
    $walks = ($Shared.Keys | Where-Object { $_ -like 'walk:*' } | Sort-Object | ForEach-Object { "$($_.Substring(5)) $($Shared[$_]) s" }) -join ', '
    Write-Host "Examples: $($Runs.Count) ran in $([int] $Timer.Elapsed.TotalSeconds) s (walks: $walks)."
}

Describe 'Runnable help examples' {
    It 'every cmdlet has at least two runnable examples: <_>' -ForEach $CmdletNames {
        $name = $_
        @($Runs | Where-Object { $_.Cmdlet -eq $name }).Count | Should -BeGreaterOrEqual 2
    }

    It 'every runnable example has its place in a cluster walk' {
        $Unplanned | Should -BeNullOrEmpty -Because 'add them to $order in ExamplePlan.ps1'
    }

    It 'a not-runnable example says why: <Key>' -ForEach $Skipped {
        $Reason | Should -Match '\w{3,}.*\w{3,}'
    }
}

Describe 'Example <Key> on the <Cluster> cluster: <Title>' -ForEach $Runs {
    It 'runs without an error' {
        $r = Wait-ExampleResult -Key $Key -Cluster $Cluster
        $r.Error | Should -BeNullOrEmpty
    }
}

Describe 'After the examples' {
    It 'the upgrade cluster is STABLE on the last target version' {
        $r = Wait-ExampleResult -Key 'final:upgrade' -Cluster 'upgrade'
        $r.Error | Should -BeNullOrEmpty
        $r.State | Should -Be 'STABLE'
        @($r.Versions | Select-Object -Unique) | Should -Be @('8.19.9')
    }

    It 'the nodes cluster has node-1 back on its original version' {
        $r = Wait-ExampleResult -Key 'final:nodes' -Cluster 'nodes'
        $r.Error | Should -BeNullOrEmpty
        $r.State | Should -Be 'ACTIVE'
        $r.Versions | Should -Be @('8.19.3')
    }
}
