# -LogPath as an operator reads it: JSON lines with every step and every /rest/zdu call (method, path, status, ms),
# never a password (canary credentials against the simulated cluster).
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-log-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
    # The canaries of tests/BitbucketZdu.TestSupport/Canary.cs.
    $script:CanaryUser = 'canary-admin'
    $script:CanaryPassword = 'Canary-P4ss-7f3e9d2b'
    $script:CanaryToken = 'Canary-T0ken-51c8a0e6'
    $script:Canaries = @($CanaryPassword, $CanaryToken,
        [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("${CanaryUser}:$CanaryPassword")),
        [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("${CanaryUser}:$CanaryToken")))
    $script:Sim = Start-SimCluster -Root (Join-Path $Dir 'sim') -Nodes 2 -Password $CanaryPassword -Extra @('--user', $CanaryUser)
    $script:Credential = [pscredential]::new($CanaryUser, (ConvertTo-SecureString $CanaryPassword -AsPlainText -Force))

    function script:Read-Log([string] $Path) { @(Get-Content -LiteralPath $Path | ForEach-Object { $_ | ConvertFrom-Json }) }
    function script:Assert-NoCanary([string] $Path) {
        $text = Get-Content -LiteralPath $Path -Raw
        foreach ($c in $Canaries) { $text.Contains($c) | Should -BeFalse -Because "a secret must never reach the log ($Path)" }
    }
}

AfterAll {
    Disconnect-BbCluster -ErrorAction SilentlyContinue
    Stop-SimCluster -Root (Join-Path $Dir 'sim')
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe '-LogPath' {
    It 'is offered by every exported cmdlet' {
        $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
        foreach ($name in $manifest.CmdletsToExport) { (Get-Command $name).Parameters.Keys | Should -Contain 'LogPath' -Because $name }
    }

    It 'logs steps and every API call with method, path, status and time, without secrets' {
        $log = Join-Path $Dir 'logs/cluster.jsonl'
        Connect-BbCluster -Uri $Sim.nodes[0].url -Credential $Credential -LogPath $log
        Enable-BbUpgradeMode -Confirm:$false -LogPath $log -Verbose 4>$null
        Disable-BbUpgradeMode -Confirm:$false -LogPath $log

        $entries = Read-Log $log
        $entries.command | Should -Contain 'Enable-BbUpgradeMode'
        ($entries | Where-Object kind -eq 'start').Count | Should -Be 3
        $get = $entries | Where-Object { $_.kind -eq 'http' -and $_.method -eq 'GET' -and $_.path -eq '/rest/zdu/cluster' } | Select-Object -First 1
        $get.status | Should -Be 200
        $get.ms | Should -BeGreaterOrEqual 0
        $post = @($entries | Where-Object { $_.kind -eq 'http' -and $_.method -eq 'POST' -and $_.command -eq 'Enable-BbUpgradeMode' })
        $post.Count | Should -Be 1
        $post[0].path | Should -BeLike '/rest/zdu/*'
        $post[0].status | Should -BeIn 200, 201, 204
        (@($entries | Where-Object { $_.kind -eq 'verbose' -and $_.command -eq 'Enable-BbUpgradeMode' }).message -join "`n") | Should -Match 'upgrade mode'
        ($entries | Where-Object kind -eq 'end').Count | Should -BeGreaterOrEqual 2
        (Get-BbClusterStatus).UpgradeModeEnabled | Should -BeFalse
        Assert-NoCanary $log
    }

    It 'logs a refused login with its status and ErrorId, without the password that was tried' {
        $log = Join-Path $Dir 'refused.jsonl'
        $wrong = [pscredential]::new($CanaryUser, (ConvertTo-SecureString $CanaryToken -AsPlainText -Force))
        { Connect-BbCluster -Uri $Sim.nodes[0].url -Credential $wrong -LogPath $log -ErrorAction Stop } | Should -Throw
        $entries = Read-Log $log
        ($entries | Where-Object kind -eq 'http').status | Should -Contain 401
        ($entries | Where-Object kind -eq 'error').errorId | Should -Not -BeNullOrEmpty
        Assert-NoCanary $log
    }

    It 'says what it does in plain words under -Verbose, and each API call under -Debug' {
        $verbose = @(Get-BbClusterStatus -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
        ($verbose.Message -join "`n") | Should -Match "Reading the cluster's rolling-upgrade state from http://127\.0\.0\.1:\d+/rest/zdu/cluster"
        # As -Debug does in PowerShell 7 (without the prompt Windows PowerShell adds, which a non-interactive test cannot answer).
        $debug = @(& { $DebugPreference = 'Continue'; Get-BbClusterStatus } 5>&1 | Where-Object { $_ -is [System.Management.Automation.DebugRecord] })
        ($debug.Message -join "`n") | Should -Match 'GET http://127\.0\.0\.1:\d+/rest/zdu/cluster -> 200 in \d+ ms'
    }

    It 'refuses an unwritable log path with BbLogPathUnwritable' {
        $file = Join-Path $Dir 'a-file'
        Set-Content -Path $file -Value 'x'
        { Get-BbClusterStatus -LogPath (Join-Path $file 'log.jsonl') -ErrorAction Stop } |
            Should -Throw -ErrorId 'BbLogPathUnwritable,BitbucketZdu.Cmdlets.GetBbClusterStatusCommand'
    }
}

Describe '-LogPath with a real HAProxy' {
    # Load-balancer calls are logged like /rest/zdu calls: each HAProxy runtime command as an "lb-command" entry
    # (provider, lb, host, command, result, ms); HTTP providers as "http" entries with provider and lb.
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot '../../tools/DemoCluster.psm1') -Function Start-DemoBalancer, Get-DemoBalancerStatus -Force
        $nodes = @($Sim.nodes | ForEach-Object { [pscustomobject]@{ Name = $_.name; Port = [int] $_.port } })
        $script:HAProxy = Start-DemoBalancer -Kind HAProxy -Environment ([pscustomobject]@{ Root = (Join-Path $Dir 'haproxy'); Nodes = $nodes; Balancer = $null; Bbsim = '' })
        $script:Lb = New-BbLoadBalancer -Kind HAProxy -Endpoint $HAProxy.Endpoint -Backend bitbucket
    }

    AfterAll {
        if ($HAProxy -and -not $HAProxy.Process.HasExited) { Stop-Process -Id $HAProxy.Process.Id -Force -ErrorAction SilentlyContinue }
    }

    It 'logs each runtime command with its verb, target, result and time, without secrets' {
        $log = Join-Path $Dir 'haproxy.jsonl'
        Connect-BbCluster -Uri $Sim.nodes[0].url -Credential $Credential -LogPath $log
        Get-BbNode -Name node-2 | Remove-BbNodeFromLoadBalancer -LoadBalancer $Lb -DrainTimeoutSec 5 -Confirm:$false -LogPath $log | Out-Null
        Add-BbNodeToLoadBalancer -LoadBalancer $Lb -Member node-2 -HealthTimeoutSec 10 -LogPath $log | Out-Null

        $entries = Read-Log $log
        $commands = @($entries | Where-Object kind -eq 'lb-command')
        $drain = @($commands | Where-Object command -eq 'set server bitbucket/node-2 state maint')
        $drain.Count | Should -Be 1
        $drain[0].command | Should -Be 'set server bitbucket/node-2 state maint'
        $drain[0].result | Should -Be 'ok'
        $drain[0].provider | Should -Be 'HAProxy'
        $drain[0].host | Should -Be $HAProxy.Endpoint
        $drain[0].lb | Should -BeLike "HAProxy *bitbucket*"
        $drain[0].ms | Should -BeGreaterOrEqual 0
        $show = @($commands | Where-Object command -like 'show stat bitbucket*')
        $show.Count | Should -BeGreaterThan 0
        $show[0].result | Should -Match '^\d+ line\(s\)$'
        ($commands.command | Where-Object { $_ -like 'set server*' } | Select-Object -Unique) | Should -Be @(
            'set server bitbucket/node-2 state maint', 'set server bitbucket/node-2 state ready')
        (Get-BbLoadBalancerMember -LoadBalancer $Lb -Name node-2).State | Should -Be 'Ready'
        Assert-NoCanary $log
    }

    It 'logs an unreachable admin socket with the failure' {
        $log = Join-Path $Dir 'haproxy-down.jsonl'
        $dead = New-BbLoadBalancer -Kind HAProxy -Endpoint "tcp://127.0.0.1:$(Get-FreeTcpPort)" -Backend bitbucket
        { Get-BbLoadBalancerMember -LoadBalancer $dead -LogPath $log -ErrorAction Stop } | Should -Throw
        $entry = @(Read-Log $log | Where-Object kind -eq 'lb-command')[0]
        $entry.command | Should -BeLike 'show stat bitbucket*'
        $entry.failure | Should -Not -BeNullOrEmpty
        $entry.result | Should -BeNullOrEmpty
    }
}
