# The README's demo (tools/Start-Demo.ps1), both variants, each in its own pwsh as `build.ps1 Demo` runs it: the
# production-shaped default (context path /bitbucket, HTTPS with the demo CA, HTTP and SSH backends, web + git load)
# through the simulator's loopback balancer, the path a fresh machine without HAProxy takes; and -Simple (root path,
# plain HTTP, web GETs only) through HAProxy when installed. Run side by side to keep the suite's time down.
BeforeAll {
    $script:Dll = Join-Path $PSHOME 'pwsh.dll'
    $script:Demo = Join-Path $PSScriptRoot '../../tools/Start-Demo.ps1'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-pester-demo-run-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
    New-Item -ItemType Directory -Path $Dir | Out-Null

    function Start-DemoRun([string] $Name, [string[]] $Arguments) {
        $out = Join-Path $Dir "$Name.out"
        $err = Join-Path $Dir "$Name.err"
        $p = Start-Process -FilePath 'dotnet' -PassThru -RedirectStandardOutput $out -RedirectStandardError $err `
            -ArgumentList (@($Dll, '-NoProfile', '-NonInteractive', '-File', $Demo, '-ModulePath', $env:BITBUCKETZDU_MODULE) + $Arguments)
        [pscustomobject]@{ Name = $Name; Process = $p; Out = $out; Err = $err }
    }

    # A run's verdict and counts, read from what it printed (ANSI codes stripped).
    function Read-DemoRun($Run) {
        $text = ((Get-Content $Run.Out, $Run.Err -Raw -ErrorAction SilentlyContinue) -join "`n") -replace "`e\[[0-9;]*m", ''
        $count = { param($label) if ($text -match "(?m)^\s+$label\s+(\d+) ok, (\d+) failed") { [pscustomobject]@{ Ok = [int] $Matches[1]; Failed = [int] $Matches[2] } } }
        [pscustomobject]@{
            ExitCode = $Run.Process.ExitCode
            Text     = $text
            Passed   = $text -match '(?m)^DEMO PASSED: 3/3 nodes upgraded, cluster STABLE with 3/3 nodes ACTIVE on 8\.19\.4, '
            Web      = & $count 'web requests:'
            GitHttp  = & $count 'git clones over HTTP:'
            GitSsh   = & $count 'git clones over SSH:'
        }
    }

    $started = [Diagnostics.Stopwatch]::StartNew()
    $script:Runs = @(
        Start-DemoRun 'production' @('-LoadBalancer', 'Bbsim')
        Start-DemoRun 'simple' @('-Simple')
    )
    foreach ($r in $Runs) {
        $left = [math]::Max(1000, 480000 - [int] $started.ElapsedMilliseconds)
        if (-not $r.Process.WaitForExit($left)) {
            Stop-Process -Id $r.Process.Id -Force -ErrorAction SilentlyContinue
            throw "The $($r.Name) demo did not finish within 480 s: $(Get-Content $r.Out -Tail 20 -ErrorAction SilentlyContinue)"
        }
        $r.Process.WaitForExit()
    }
    $script:Production = Read-DemoRun $Runs[0]
    $script:Simple = Read-DemoRun $Runs[1]
    Write-Host ("Both demo variants side by side: {0:0.0} s" -f $started.Elapsed.TotalSeconds)
}

AfterAll {
    foreach ($r in @($Runs)) { if ($r -and -not $r.Process.HasExited) { Stop-Process -Id $r.Process.Id -Force -ErrorAction SilentlyContinue } }
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'tools/Start-Demo.ps1' {
    It 'by default upgrades a production-shaped cluster under web and git load (HTTP and SSH) with nothing failed' {
        $run = $Production
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Passed | Should -BeTrue -Because $run.Text
        # Production-shaped: HTTPS and the context path on the balancer's front, an SSH backend beside the HTTP one.
        $run.Text | Should -Match "(?m)^==> Load balancer: Bbsim at https://127\.0\.0\.1:\d+/bitbucket, .*git over SSH at 127\.0\.0\.1:\d+, backend 'bitbucket_ssh'"
        $run.Text | Should -Match '(?m)^node-1 +https://127\.0\.0\.1:\d+/bitbucket '
        $run.Text | Should -Match "Demo CA \(trusted by the profile's Tls\.TrustedCertificatePath\)"
        # Every take-out drained the node in both backends (listed in either order: the profile's Members is a hashtable).
        ([regex]::Matches($run.Text, 'Done: Take out of rotation: drain, wait until idle, maintenance \((lb:(node-\d), lb-ssh:\2|lb-ssh:(node-\d), lb:\3)\)')).Count | Should -Be 3
        foreach ($kind in 'Web', 'GitHttp', 'GitSsh') {
            $run.$kind | Should -Not -BeNullOrEmpty -Because "the $kind count is printed"
            $run.$kind.Ok | Should -BeGreaterThan 0 -Because "$kind traffic ran"
            $run.$kind.Failed | Should -Be 0 -Because $run.Text
        }
    }

    It 'with -Simple still upgrades the root-path, plain-HTTP cluster under web load with no failed request' {
        $run = $Simple
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Passed | Should -BeTrue -Because $run.Text
        $run.Text | Should -Match '(?m)^==> Load balancer: \w+ at http://127\.0\.0\.1:\d+, '
        $run.Text | Should -Not -Match 'git over SSH at'
        $run.Web.Ok | Should -BeGreaterThan 0
        $run.Web.Failed | Should -Be 0
        $run.GitHttp | Should -BeNullOrEmpty -Because 'the simple demo clones nothing'
    }
}
