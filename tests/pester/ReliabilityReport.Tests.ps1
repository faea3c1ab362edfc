# tools/New-ReliabilityReport.ps1 turns the suite files under out/reliability into docs/reliability.md: every suite is
# listed, and the closing totals count the fault matrix, the bad inputs, the soak (upgrades and leaks) and failed requests.
BeforeAll {
    $script:Tool = Join-Path $PSScriptRoot '../../tools/New-ReliabilityReport.ps1'
    function script:New-Suite([string] $Dir, [string] $File, [string] $Suite, [object[]] $Cases) {
        New-Item -ItemType Directory -Path $Dir -Force | Out-Null
        @{ Suite = $Suite; Cases = $Cases } | ConvertTo-Json -Depth 5 | Set-Content -Path (Join-Path $Dir $File)
    }
    function script:Get-Report([string] $Dir) {
        $page = Join-Path $Dir 'reliability.md'
        & $Tool -InputPath $Dir -OutputPath $page 6>$null
        Get-Content -Raw $page
    }
    function script:Round([int] $N, [int] $Failed = 0) {
        @{ Case = "local: round $N, 8.19.$($N + 2) -> 8.19.$($N + 3)"; Area = 'soak (local)'; Outcome = 'upgraded'; Message = 'upgraded 2/2'; Requests = 100; RequestsFailed = $Failed }
    }
    function script:Check([string] $What, [string] $Outcome = 'no leak') {
        @{ Case = "local: leak check, $What"; Area = 'soak (local)'; Outcome = $Outcome; Message = "$What 10 -> 10" }
    }
}

Describe 'New-ReliabilityReport' {
    It 'counts the soak: upgrades completed and no leak' {
        $dir = Join-Path $TestDrive 'clean'
        New-Suite $dir 'fault-matrix.json' 'Fault matrix' @(@{ Case = 'happy path'; Area = 'end-to-end'; Outcome = 'survived'; RequestsFailed = 0 })
        New-Suite $dir 'soak.json' 'Soak' @((Round 1), (Round 2), (Round 3), (Check 'processes'), (Check 'file descriptors'))

        $page = Get-Report $dir

        $page | Should -Match '(?m)^\| Soak \| 5 \| 2 no leak, 3 upgraded \|$'
        $page | Should -Match '(?m)^## Soak$'
        $page | Should -Match 'local: leak check, file descriptors \| soak \(local\) \| no leak'
        $page | Should -Match '(?m)^- Soak: 3 of 3 successive upgrades completed, 0 leak\(s\) in 2 leak check\(s\)'
        $page | Should -Match '(?m)^- Faults survived: 1 of 1$'
        $page | Should -Match '(?m)^- Requests failed: 0$'
    }

    It 'reports a leak and the requests a soak round failed' {
        $dir = Join-Path $TestDrive 'leak'
        New-Suite $dir 'soak.json' 'Soak' @((Round 1), (Round 2 -Failed 3), (Check 'processes'), (Check 'memory and runspaces' 'LEAK'))

        $page = Get-Report $dir

        $page | Should -Match '(?m)^- Soak: 2 of 2 successive upgrades completed, 1 leak\(s\) in 2 leak check\(s\)'
        $page | Should -Match '(?m)^- Requests failed: 3$'
        $page | Should -Match '(?m)^- Faults survived: no fault matrix results in this run$'
    }

    It 'says when the soak did not run' {
        $dir = Join-Path $TestDrive 'nosoak'
        New-Suite $dir 'bad-input.json' 'Bad input' @(@{ Case = 'bad url'; Area = 'profile'; Outcome = 'refused'; ErrorId = 'ProfileInvalidUrl' })

        Get-Report $dir | Should -Match '(?m)^- Soak: not run in this run$'
    }
}
