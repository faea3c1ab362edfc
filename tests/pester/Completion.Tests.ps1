# Tab completion as users meet it (TabExpansion2): node names and ids from the connected (simulated) cluster, states,
# load-balancer members from the -LoadBalancer on the command line, cluster profiles.
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-complete-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
    $script:Sim = Start-SimCluster -Root (Join-Path $Dir 'sim') -Nodes 2
    $password = ConvertTo-SecureString $Sim.password -AsPlainText -Force
    Connect-BbCluster -Uri $Sim.nodes[0].url -Credential ([pscredential]::new($Sim.user, $password))

    function script:Complete([string] $line) {
        @((TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches)
    }
}

AfterAll {
    Disconnect-BbCluster -ErrorAction SilentlyContinue
    Stop-SimCluster -Root (Join-Path $Dir 'sim')
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Argument completion' {
    It 'offers the node names of the connected cluster' {
        (Complete 'Get-BbNode -Name ').CompletionText | Should -Be @('node-1', 'node-2')
        (Complete 'Get-BbNode -Name node-2').CompletionText | Should -Be @('node-2')
        (Complete 'Invoke-BbNodeUpgrade -ProfilePath x.psd1 -Name NODE-').CompletionText | Should -Be @('node-1', 'node-2')
    }

    It 'offers node ids for -Id, with the node name in the tooltip' {
        $ids = @(Get-BbNode | Sort-Object Id | ForEach-Object Id)
        $matches = Complete 'Get-BbNode -Id '
        $matches.CompletionText | Sort-Object | Should -Be $ids
        $matches[0].ToolTip | Should -Match 'node-\d'
    }

    It 'offers cluster states to Wait-BbClusterState and node states elsewhere, with their meaning' {
        (Complete 'Wait-BbClusterState -State READY').CompletionText | Should -Be @('READY_TO_RUN_UPGRADE_TASKS', 'READY_TO_UPGRADE')
        (Complete 'Get-BbNode -State OFF').CompletionText | Should -Be @('OFFLINE')
        (Complete 'Wait-BbNodeState -State ').CompletionText | Should -Contain 'ACTIVE'
        (Complete 'Wait-BbNodeState -State ').CompletionText | Should -Not -Contain 'STABLE'
    }

    # What a user sees through TabExpansion2 (PSReadLine shows the tooltip of the selected entry): PowerShell's own
    # completion of an enum-typed parameter gave bare names (tooltip = the name) and offered Unknown.
    It 'shows what each state means and never offers Unknown (<Line>)' -ForEach @(
        @{ Line = 'Wait-BbClusterState -State '; Meaning = @{ MIXED = 'different versions'; STABLE = 'upgrade mode off' } }
        @{ Line = 'Wait-BbNodeState -State '; Meaning = @{ OFFLINE = 'stopped'; DRAINING = 'finishing its requests' } }
        @{ Line = 'Get-BbNode -State '; Meaning = @{ ACTIVE = 'serving requests'; ERROR = 'atlassian-bitbucket.log' } }
        @{ Line = 'Wait-BbNodeState -Name node-1 -State ACTIVE, '; Meaning = @{ TERMINATING = 'shutting down' } }
    ) {
        $matches = Complete $Line
        $matches.Count | Should -BeGreaterThan 5
        $matches.CompletionText | Should -Not -Contain 'Unknown'
        foreach ($m in $matches) { $m.ToolTip | Should -Not -Be $m.CompletionText -Because "the tooltip of $($m.CompletionText) says what it means" }
        foreach ($state in $Meaning.Keys) {
            ($matches | Where-Object CompletionText -EQ $state).ToolTip | Should -Match $Meaning[$state]
        }
        (Complete ($Line + 'unk')).CompletionText | Should -BeNullOrEmpty
    }

    It 'offers the members of the load balancer given on the command line' {
        $balancer = Start-SimBalancer -Manifest $Sim
        try {
            $global:BbCompletionTestLb = New-BbLoadBalancer -Kind HAProxy -Endpoint "tcp://127.0.0.1:$($balancer.AdminPort)" -Backend bitbucket
            (Complete 'Remove-BbNodeFromLoadBalancer -LoadBalancer $BbCompletionTestLb -Member ').CompletionText | Should -Be @('node-1', 'node-2')
            (Complete 'Get-BbLoadBalancerMember -LoadBalancer $BbCompletionTestLb -Name node-1').CompletionText | Should -Be @('node-1')
        }
        finally {
            Remove-Variable -Name BbCompletionTestLb -Scope Global -ErrorAction SilentlyContinue
            Stop-SimBalancer $balancer
        }
    }

    It 'offers cluster profiles (*.psd1) and folders, not other files' {
        $profiles = Join-Path $Dir 'profiles'
        New-Item -ItemType Directory -Path (Join-Path $profiles 'staging') -Force | Out-Null
        Set-Content -Path (Join-Path $profiles 'prod.psd1') -Value '@{}'
        Set-Content -Path (Join-Path $profiles 'notes.txt') -Value 'x'
        Push-Location $profiles
        try {
            $texts = (Complete 'Invoke-BbRollingUpgrade -ProfilePath ').CompletionText
            $texts | Should -Contain 'prod.psd1'
            $texts | Should -Contain ('staging' + [IO.Path]::DirectorySeparatorChar)
            $texts | Should -Not -Contain 'notes.txt'
            (Complete 'Test-BbClusterProfile -ProfilePath pr').CompletionText | Should -Be @('prod.psd1')
        }
        finally { Pop-Location }
    }

    It 'offers no node names, and raises no error, when not connected' {
        Disconnect-BbCluster
        $errors = $Error.Count
        $empty = Join-Path $Dir 'empty'
        New-Item -ItemType Directory -Path $empty -Force | Out-Null
        Push-Location $empty
        try {
            $clock = [Diagnostics.Stopwatch]::StartNew()
            (Complete 'Get-BbNode -Name ').CompletionText | Should -Not -Contain 'node-1'
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 3
            $Error.Count | Should -Be $errors
        }
        finally { Pop-Location }
    }
}
