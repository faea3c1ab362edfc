# "A new user who types Get-Help about_BitbucketZdu and follows it upgrades the simulated cluster": the command lines
# of the topic's walk-through (the built module's topic, as Get-Help shows it) run in order in a fresh pwsh process,
# from the repository root as the topic says, and the cluster ends STABLE on 8.19.4.
#
# Code blocks of the section are the lines indented by exactly 8 spaces after a blank line, up to the next blank line
# (deeper lines continue the block). The only changes: the fixed ports and the temp folder name are replaced by free
# ones (other tests run in parallel), and a check is inserted before the clean-up step.
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

    $text = Get-Help about_BitbucketZdu | Out-String
    $lines = $text -split '\r?\n'
    $start = [Array]::FindIndex($lines, [Predicate[string]] { param($l) $l -match '^WALK-THROUGH' })
    $end = [Array]::FindIndex($lines, $start + 1, [Predicate[string]] { param($l) $l -match '^[A-Z][A-Z ,:-]+$' })
    $script:Section = $lines[$start..($end - 1)]
    # Steps: "    N. prose" followed by code blocks.
    $script:Steps = [Collections.Generic.List[object]]::new()
    $inCode = $false
    $previousBlank = $true
    foreach ($l in $Section) {
        if ($l -match '^    (\d+)\. (.*)$') { $Steps.Add([pscustomobject]@{ Number = [int] $Matches[1]; Title = $Matches[2]; Code = [Collections.Generic.List[string]]::new() }) }
        if ($l.Trim() -eq '') { $inCode = $false }
        elseif ($previousBlank -and $l -match '^ {8}\S') { $inCode = $true }
        if ($inCode -and $Steps.Count -gt 0) { $Steps[$Steps.Count - 1].Code.Add($l.Substring(8)) }
        $previousBlank = $l.Trim() -eq ''
    }

    $ports = @{ '7990' = Get-FreeTcpPort; '7991' = Get-FreeTcpPort; '7992' = Get-FreeTcpPort; '8080' = Get-FreeTcpPort; '9999' = Get-FreeTcpPort }
    $script:AdminPort = $ports['9999']
    $script:RootName = 'bbzdu-walkthrough-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    $script:Root = Join-Path ([IO.Path]::GetTempPath()) $RootName
    function script:ConvertTo-TestLine([string] $Line) {
        foreach ($p in $ports.Keys) { $Line = $Line -replace "\b$p\b", $ports[$p] }
        $Line.Replace("'bbzdu-walkthrough'", "'$RootName'")
    }
}

AfterAll {
    # Whatever the walk-through started and did not stop (it failed before its clean-up step).
    Stop-SimCluster -Root $Root -ErrorAction SilentlyContinue
    Get-Process dotnet -ErrorAction SilentlyContinue | Where-Object { $_.CommandLine -match "--admin-port $AdminPort(\s|$)" } |
        ForEach-Object { Stop-Process -Id $_.Id -Force -ErrorAction SilentlyContinue }
    Remove-Item $Root -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The walk-through of about_BitbucketZdu' {
    It 'has numbered steps with command lines, from the simulator to the clean-up' {
        $Steps.Count | Should -BeGreaterOrEqual 6
        $code = ($Steps.Code | ForEach-Object { $_ }) -join "`n"
        foreach ($needed in 'bbsim cluster', 'Connect-BbCluster', 'Get-BbClusterStatus', 'New-BbClusterProfile', 'Test-BbClusterProfile',
            'Invoke-BbRollingUpgrade .*-WhatIf', 'Invoke-BbRollingUpgrade .*-Confirm:\$false', 'bbsim stop') {
            $code | Should -Match ($needed -replace 'bbsim ', '\$bbsim ')
        }
        @($Steps | Where-Object Title -match '^Clean up').Count | Should -Be 1
    }

    It 'upgrades the simulated cluster to 8.19.4 when its lines run in order in a fresh pwsh' {
        $script = [Text.StringBuilder]::new()
        $null = $script.AppendLine('$ErrorActionPreference = ''Stop''').AppendLine('$ProgressPreference = ''SilentlyContinue''')
        foreach ($step in $Steps) {
            if ($step.Title -match '^Clean up') {
                # The check, in the walk-through's own session, before it stops the cluster.
                $null = $script.AppendLine('$s = Get-BbClusterStatus; "WALKTHROUGH-RESULT " + (@{ State = "$($s.State)"; Versions = @($s.Nodes | ForEach-Object { "$($_.Version)" }); Members = @(Get-BbLoadBalancerMember -LoadBalancer $lb | Sort-Object Name | ForEach-Object { "$($_.Name)=$($_.State)" }) } | ConvertTo-Json -Compress)')
            }
            foreach ($line in $step.Code) { $null = $script.AppendLine((ConvertTo-TestLine $line)) }
        }
        $file = Join-Path ([IO.Path]::GetTempPath()) "$RootName.ps1"
        Set-Content -Path $file -Value $script.ToString()
        $out = Join-Path ([IO.Path]::GetTempPath()) "$RootName.out"
        $pwsh = Join-Path $PSHOME 'pwsh.dll'
        $process = Start-Process -FilePath 'dotnet' -ArgumentList @($pwsh, '-NoProfile', '-NonInteractive', '-File', $file) -WorkingDirectory $RepoRoot `
            -RedirectStandardOutput $out -RedirectStandardError "$out.err" -PassThru
        try {
            if (-not $process.WaitForExit(180000)) { Stop-Process -Id $process.Id -Force; throw "The walk-through did not finish within 180 s: $(Get-Content $out -Raw)" }
            $output = Get-Content $out -Raw
            $errors = Get-Content "$out.err" -Raw
            $process.ExitCode | Should -Be 0 -Because "the walk-through must run without an error: $errors`n$output"
            $result = ($output -split '\r?\n' | Where-Object { $_ -like 'WALKTHROUGH-RESULT *' } | Select-Object -First 1)
            $result | Should -Not -BeNullOrEmpty -Because "the check before the clean-up must run: $output"
            $r = $result.Substring('WALKTHROUGH-RESULT '.Length) | ConvertFrom-Json
            $r.State | Should -Be 'STABLE'
            $r.Versions | Should -Be @('8.19.4', '8.19.4', '8.19.4')
            $r.Members | Should -Be @('node-1=Ready', 'node-2=Ready', 'node-3=Ready')
            $output | Should -Match 'upgraded from 8\.19\.3 to 8\.19\.4: 3/3 nodes'
            # The clean-up step ran: the cluster is gone.
            Test-Path (Join-Path $Root 'node-1/home/bitbucket.pid') | Should -BeFalse
        }
        finally {
            Remove-Item $file, $out, "$out.err" -ErrorAction SilentlyContinue
        }
    }
}
