# The recipe scripts of docs/recipes/scripts run as a scheduler or Azure Automation runs them: in a separate
# non-interactive pwsh, against the simulated cluster behind bbsim's loopback balancer (HAProxy runtime API).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:Scripts = Join-Path $PSScriptRoot '../../docs/recipes/scripts'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-recipe-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
    $script:Sim = Start-SimCluster -Root (Join-Path $Dir 'sim') -Nodes 2 -Password 'recipe-pw'
    $script:Balancer = Start-SimBalancer -Manifest $Sim
    $script:ProfilePath = New-SimProfile -Manifest $Sim -Root $Dir -Balancer $Balancer -Path (Join-Path $Dir 'sim.psd1')
    # systemd LoadCredential: a folder with one file per credential, named by $CREDENTIALS_DIRECTORY.
    $script:CredDir = Join-Path $Dir 'credentials'
    New-Item -ItemType Directory -Path $CredDir | Out-Null
    Set-Content -Path (Join-Path $CredDir 'bitbucket-password') -Value 'recipe-pw' -NoNewline
    # The same PowerShell as this one (dotnet pwsh runs pwsh.dll through dotnet).
    $dll = Join-Path $PSHOME 'pwsh.dll'
    $script:Pwsh, $script:PwshPre = if (Test-Path $dll) { 'dotnet', @($dll) } else { (Get-Process -Id $PID).Path, @() }

    function script:Invoke-Scheduled([string[]] $Arguments) {
        $previous = $env:CREDENTIALS_DIRECTORY
        $env:CREDENTIALS_DIRECTORY = $CredDir
        try {
            $output = & $Pwsh @PwshPre -NoProfile -NonInteractive -File (Join-Path $Scripts 'Invoke-ScheduledUpgrade.ps1') `
                -ModulePath $env:BITBUCKETZDU_MODULE -UserName $Sim.user @Arguments 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String) }
        }
        finally { $env:CREDENTIALS_DIRECTORY = $previous }
    }
}

AfterAll {
    Stop-SimBalancer $Balancer
    Stop-SimCluster -Root (Join-Path $Dir 'sim')
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Azure Automation runbook' {
    It 'reads the credential and profile assets and prints a plan that reads well in the job log' {
        $stubs = Join-Path $Scripts 'AutomationStubs.psm1'
        $runbook = Join-Path $Scripts 'Invoke-BbUpgradeRunbook.ps1'
        $command = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$env:BITBUCKETZDU_MODULE'
Import-Module '$stubs'
Set-AutomationStub -Credential @{ BitbucketSysadmin = [pscredential]::new('$($Sim.user)', (ConvertTo-SecureString 'recipe-pw' -AsPlainText -Force)) } ``
    -Variable @{ BitbucketZduProfile = (Get-Content -Raw '$ProfilePath') }
& '$runbook' -PlanOnly `$true
"@
        $output = & $Pwsh @PwshPre -NoProfile -NonInteractive -Command $command 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($output | Out-String)
        $text = $output | Out-String
        $text | Should -Match 'rolling upgrade as admin \(plan only\)'
        $text | Should -Match 'node-2'
        $text | Should -Not -Match 'recipe-pw'
    }
}

Describe 'Scheduled task / systemd timer script' {
    It 'prints the plan under -WhatIf, exits 0 and logs the run' {
        $log = Join-Path $Dir 'whatif/upgrade.jsonl'
        $run = Invoke-Scheduled @('-ProfilePath', $ProfilePath, '-LogPath', $log, '-WhatIf')
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'Plan only'
        $run.Output | Should -Match 'node-1'
        $entries = @(Get-Content $log | ForEach-Object { $_ | ConvertFrom-Json })
        ($entries | Where-Object kind -eq 'start').command | Should -Be 'Invoke-BbRollingUpgrade'
        ($entries | Where-Object { $_.kind -eq 'http' -and $_.path -like '/rest/zdu/*' -and $_.status -eq 200 }) | Should -Not -BeNullOrEmpty
        ($entries | Where-Object kind -eq 'exit').exitCode | Should -Be 0
        (Get-Content $log -Raw).Contains('recipe-pw') | Should -BeFalse
    }

    It 'exits 1 and logs the ErrorId when the cluster cannot be reached' {
        $dead = New-SimProfile -Manifest $Sim -Root (Join-Path $Dir 'dead') -Balancer $Balancer -Path (Join-Path $Dir 'dead.psd1') `
            -BaseUrl "http://127.0.0.1:$(Get-FreeTcpPort)/"
        $log = Join-Path $Dir 'dead/upgrade.jsonl'
        $run = Invoke-Scheduled @('-ProfilePath', $dead, '-LogPath', $log)
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Output | Should -Match 'FAILED'
        $entries = @(Get-Content $log | ForEach-Object { $_ | ConvertFrom-Json })
        ($entries | Where-Object kind -eq 'error').errorId | Should -Not -BeNullOrEmpty
        ($entries | Where-Object kind -eq 'exit').exitCode | Should -Be 1
    }

    It 'upgrades the cluster, exits 0 and logs every step and API call' {
        $log = Join-Path $Dir 'real/upgrade.jsonl'
        $run = Invoke-Scheduled @('-ProfilePath', $ProfilePath, '-LogPath', $log)
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'upgraded from 8\.19\.3 to 8\.19\.4: 2/2 nodes'
        $entries = @(Get-Content $log | ForEach-Object { $_ | ConvertFrom-Json })
        $posts = @($entries | Where-Object { $_.kind -eq 'http' -and $_.method -eq 'POST' })
        $posts.Count | Should -BeGreaterOrEqual 2 -Because 'upgrade mode is enabled and the upgrade finalized'
        $posts | ForEach-Object { $_.status | Should -BeLessThan 300 }
        (@($entries | Where-Object kind -eq 'verbose').message -join "`n") | Should -Match 'node-2'
        ($entries | Where-Object kind -eq 'exit').exitCode | Should -Be 0
        (Get-Content $log -Raw).Contains('recipe-pw') | Should -BeFalse
    }
}

