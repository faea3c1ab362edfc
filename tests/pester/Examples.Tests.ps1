# The examples of the shipped help really run: for every exported cmdlet, the examples of `Get-Help <cmdlet> -Examples`
# (the built MAML, not the markdown) run against simulated clusters, each in a fresh runspace after the prelude that
# docs/development.md describes ("Runnable help examples"). An example whose remarks say "Not runnable on the
# simulated cluster: <reason>" is skipped visibly; every cmdlet needs at least two that run.
#
# Three clusters, each walked in a fixed order because examples change state:
#   main     read-only examples, upgrade mode on and off, load-balancer members out and back in, profiles
#   nodes    node work over SSH (loopback sshd) on node-1 with upgrade mode on: inspect, pre-stage, configure,
#            stop, start the new version, roll back, and again through pipelines
#   upgrade  rolling upgrades 8.19.3 -> 8.19.4 -> 8.19.5 -> 8.19.6 (Invoke-BbRollingUpgrade), node by node to
#            8.19.7 and 8.19.8 (Invoke-BbNodeUpgrade) and finalization (Complete-BbRollingUpgrade), ending STABLE on 8.19.8
BeforeDiscovery {
    $NotRunnable = 'Not runnable on the simulated cluster:'
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $script:Examples = foreach ($cmdlet in $manifest.CmdletsToExport) {
        $i = 0
        foreach ($e in @((Get-Help $cmdlet -Examples).Examples.Example)) {
            $i++
            $remarks = (@($e.Remarks | ForEach-Object Text) -join ' ').Trim()
            @{
                Key = "$cmdlet#$i"; Cmdlet = $cmdlet; Index = $i; Code = [string] $e.Code
                Title = ($e.Title -replace '^-+\s*|\s*-+$', '')
                Reason = if ($remarks -match [regex]::Escape($NotRunnable) + '\s*(.+)$') { $Matches[1] } else { $null }
            }
        }
    }
    # The order per cluster: 'Cmdlet' = all its runnable examples in order, 'Cmdlet#n' = that one.
    $order = [ordered]@{
        main    = @('Connect-BbCluster', 'Disconnect-BbCluster', 'Get-BbClusterStatus', 'Get-BbNode', 'Wait-BbClusterState#2',
            'Enable-BbUpgradeMode', 'Disable-BbUpgradeMode', 'Get-BbLoadBalancerMember', 'New-BbLoadBalancer',
            'Remove-BbNodeFromLoadBalancer', 'Add-BbNodeToLoadBalancer', 'New-BbClusterProfile', 'Test-BbClusterProfile')
        nodes   = @('Get-BbNodeInstallation', 'Copy-BbDistribution', 'Install-BbNodeVersion', 'Stop-BbNode#1', 'Start-BbNode#1',
            'Undo-BbNodeUpgrade#1', 'Wait-BbNodeState#1', 'Wait-BbNodeState#2', 'Stop-BbNode#2', 'Start-BbNode#2', 'Undo-BbNodeUpgrade#2')
        upgrade = @('Invoke-BbRollingUpgrade', 'Invoke-BbNodeUpgrade', 'Wait-BbClusterState#1', 'Complete-BbRollingUpgrade#1',
            'Complete-BbRollingUpgrade#2')
    }
    $runnable = @($Examples | Where-Object { -not $_.Reason })
    $script:Runs = @(foreach ($cluster in $order.Keys) {
            foreach ($entry in $order[$cluster]) {
                foreach ($e in $runnable | Where-Object { $_.Key -eq $entry -or $_.Cmdlet -eq $entry }) {
                    $run = $e.Clone()
                    $run.Cluster = $cluster
                    $run
                }
            }
        })
    $script:Unplanned = @($runnable | Where-Object { $_.Key -notin $Runs.Key } | ForEach-Object { $_.Key })
    $script:Skipped = @($Examples | Where-Object { $_.Reason })
    $script:CmdletNames = @($manifest.CmdletsToExport)
}

BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-ex-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
    $script:Password = 'Example-P4ss-1'
    $script:Ssh = Start-SimSshd -Root (Join-Path $Dir 'sshd')
    $script:Clusters = @{}
    $script:Timer = [Diagnostics.Stopwatch]::StartNew()

    function script:Get-ExampleCluster([string] $Name) {
        if ($Clusters[$Name]) { return $Clusters[$Name] }
        $root = Join-Path $Dir $Name
        $sim = Start-SimCluster -Root $root -Nodes 2 -Password $Password
        $c = [pscustomobject]@{ Name = $Name; Root = $root; Sim = $sim; Balancer = (Start-SimBalancer -Manifest $sim); Target = '8.19.4'; Profiles = @{} }
        $Clusters[$Name] = $c
        if ($Name -eq 'nodes') { Invoke-Example -Cluster $c -Code 'Enable-BbUpgradeMode -Confirm:$false | Out-Null' -Where 'set-up' }
        $c
    }

    function script:Get-ExampleProfile($Cluster) {
        # A profile of the cluster for its current target version (bbsim dist builds the release archive once per version).
        if (-not $Cluster.Profiles[$Cluster.Target]) {
            $folder = Join-Path $Cluster.Root "profile-$($Cluster.Target)"
            New-Item -ItemType Directory -Path $folder -Force | Out-Null
            $Cluster.Profiles[$Cluster.Target] = New-SimProfile -Manifest $Cluster.Sim -Root $folder -Balancer $Cluster.Balancer -Path (Join-Path $folder 'prod.psd1') -TargetVersion $Cluster.Target
        }
        $Cluster.Profiles[$Cluster.Target]
    }

    # The prelude every example runs after (docs/development.md, "Runnable help examples").
    function script:New-Prelude($Cluster, [string] $WorkDir) {
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
    function script:Get-StandIn($Cluster) {
        $uri = "'http://127.0.0.1:$($Cluster.Balancer.ListenPort)'"
        [ordered]@{
            'https://bitbucket.example.com'   = $uri
            'https://bb-prod.example.com'     = $uri
            'https://bb-test.example.com'     = $uri
            "@{ HostName = 'bb1.example.com'; UserName = 'root'; KeyFilePath = '~/.ssh/bbzdu'; Transport = 'Ssh' }" = '$node'
            '/opt/atlassian/bitbucket/8.19.3' = '$old'
        }
    }

    function script:Invoke-Example($Cluster, [string] $Code, [string] $Where, [string] $Setup, [int] $TimeoutSec = 90) {
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
    $script:Before = @{
        'Disable-BbUpgradeMode#1'      = 'Enable-BbUpgradeMode -Confirm:$false | Out-Null'
        'Disable-BbUpgradeMode#2'      = 'Enable-BbUpgradeMode -Confirm:$false | Out-Null'
        'New-BbClusterProfile#1'       = 'Remove-Item ./prod.psd1'
        'Invoke-BbRollingUpgrade#2'    = { $c.Target = '8.19.5' }
        'Invoke-BbRollingUpgrade#3'    = { $c.Target = '8.19.6' }
        'Invoke-BbNodeUpgrade#1'       = { $c.Target = '8.19.7' }
        'Complete-BbRollingUpgrade#2'  = { $c.Target = '8.19.8' }
        # Complete#2 finalizes again: bring every node to 8.19.8 first.
        'Complete-BbRollingUpgrade#2+' = 'Enable-BbUpgradeMode | Out-Null; (Get-BbClusterStatus).Nodes | Invoke-BbNodeUpgrade -ProfilePath ./prod.psd1 | Out-Null'
    }
    $script:After = @{
        'Enable-BbUpgradeMode#1'         = 'Disable-BbUpgradeMode -Confirm:$false | Out-Null'
        'Enable-BbUpgradeMode#3'         = 'Disable-BbUpgradeMode -Confirm:$false | Out-Null'
        'Remove-BbNodeFromLoadBalancer#1' = 'Add-BbNodeToLoadBalancer -LoadBalancer $lb -Member node-2 | Out-Null'
    }
}

AfterAll {
    foreach ($c in $Clusters.Values) {
        Stop-SimBalancer $c.Balancer
        Stop-SimCluster -Root $c.Root
    }
    Stop-SimSshd $Ssh
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
    Write-Host "Examples: ran in $([int] $Timer.Elapsed.TotalSeconds) s."
}

Describe 'Runnable help examples' {
    It 'every cmdlet has at least two runnable examples: <_>' -ForEach $CmdletNames {
        $name = $_
        @($Runs | Where-Object { $_.Cmdlet -eq $name }).Count | Should -BeGreaterOrEqual 2
    }

    It 'every runnable example has its place in a cluster walk' {
        $Unplanned | Should -BeNullOrEmpty -Because 'add them to $order in BeforeDiscovery'
    }

    It 'a not-runnable example says why: <Key>' -ForEach $Skipped {
        $Reason | Should -Match '\w{3,}.*\w{3,}'
    }
}

Describe 'Example <Key> on the <Cluster> cluster: <Title>' -ForEach $Runs {
    It 'runs without an error' {
        $c = Get-ExampleCluster $Cluster
        $setup = foreach ($k in @($Key, "$Key+")) {
            $step = $Before[$k]
            if ($step -is [scriptblock]) { . $step } elseif ($step) { $step }
        }
        Invoke-Example -Cluster $c -Code $Code -Setup ($setup -join [Environment]::NewLine) -Where "Example $Key" | Out-Null
        if ($After[$Key]) { Invoke-Example -Cluster $c -Code $After[$Key] -Where "clean-up of $Key" | Out-Null }
    }
}

Describe 'After the examples' {
    It 'the upgrade cluster is STABLE on the last target version' {
        $c = Get-ExampleCluster 'upgrade'
        $status = Invoke-Example -Cluster $c -Code 'Get-BbClusterStatus' -Where 'final check'
        $status.State | Should -Be 'STABLE'
        @($status.Nodes.Version | Select-Object -Unique) | Should -Be @('8.19.8')
    }

    It 'the nodes cluster has node-1 back on its original version' {
        $c = Get-ExampleCluster 'nodes'
        $status = Invoke-Example -Cluster $c -Code 'Get-BbNode -Name node-1' -Where 'final check'
        $status.State | Should -Be 'ACTIVE'
        $status.Version | Should -Be '8.19.3'
    }
}
