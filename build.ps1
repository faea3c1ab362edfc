<#
.SYNOPSIS
    Builds, tests and packages the BitbucketZdu module.

.DESCRIPTION
    Run it with the pinned PowerShell from the repo's tool manifest:
        dotnet tool restore
        dotnet pwsh ./build.ps1 <Task>

    Tasks:
        Build    compile and assemble the module folder out/BitbucketZdu/<version>/ (manifest, assemblies, formats, help)
        Test     Build, then every xUnit project and the Pester suite; ends with one line "N passed, N failed"
        Package  Build, then out/packages/BitbucketZdu.<version>.nupkg (PowerShell Gallery) and .zip (Azure Automation)
        Demo     the main job against the simulated cluster (see README)
        Bench    the benchmarks in bench/ (prints figures; not a test)
        Clean    remove out/ and every bin/ obj/

.PARAMETER Task
    One or more tasks, run in order.

.PARAMETER Configuration
    Release (default) or Debug.

.PARAMETER Filter
    Test only: an xUnit filter expression (dotnet test --filter) and a Pester FullName filter.
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [string[]] $Task = @('Build'),

    [ValidateSet('Release', 'Debug')]
    [string] $Configuration = 'Release',

    [string] $Filter
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$Manifest = Import-PowerShellDataFile (Join-Path $Root 'BitbucketZdu.psd1')
$ModuleVersion = $Manifest.ModuleVersion
$ModuleDir = Join-Path $Out "BitbucketZdu/$ModuleVersion"
$PesterVersion = '5.9.1'
$ValidTasks = [ordered]@{
    Build   = 'compile and assemble the module folder'
    Test    = 'build, run xUnit and Pester, print "N passed, N failed"'
    Package = 'build the .nupkg and the Azure Automation .zip'
    Demo    = 'run the main job against the simulated cluster'
    Bench   = 'run the benchmarks in bench/'
    Help    = 'list the tasks'
    Clean   = 'remove build output'
}

function Write-Step([string] $Message) { Write-Host "==> $Message" -ForegroundColor Cyan }

function Invoke-Native {
    # Runs a native command and fails the build on a non-zero exit code.
    param([string] $File, [string[]] $Arguments)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$File $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
}

function Get-PwshCommand {
    # The PowerShell that runs this script, as a command line usable by child processes (the 'dotnet pwsh' shim only
    # resolves inside the repo, so use $PSHOME directly).
    $dll = Join-Path $PSHOME 'pwsh.dll'
    if (Test-Path $dll) { return @('dotnet', $dll) }
    return @((Get-Process -Id $PID).Path)
}

function Invoke-Build {
    Write-Step "Build ($Configuration)"
    Invoke-Native dotnet @('build', (Join-Path $Root 'BitbucketZdu.sln'), '-c', $Configuration, '--nologo', '-v', 'quiet', '-clp:NoSummary')

    Write-Step "Assemble $ModuleDir"
    if (Test-Path $ModuleDir) { Remove-Item $ModuleDir -Recurse -Force }
    New-Item -ItemType Directory -Path $ModuleDir -Force | Out-Null
    $bin = Join-Path $Root "src/BitbucketZdu/bin/$Configuration/netstandard2.0"
    Get-ChildItem $bin -Filter '*.dll' |
        Where-Object Name -NotIn @('System.Management.Automation.dll') |
        Copy-Item -Destination $ModuleDir
    Copy-Item (Join-Path $Root 'BitbucketZdu.psd1') $ModuleDir
    Copy-Item (Join-Path $Root 'module/*') $ModuleDir -Recurse -Force

    $helpConverter = Join-Path $Root 'tools/ConvertTo-MamlHelp.ps1'
    if (Test-Path $helpConverter) {
        & $helpConverter -DocsPath (Join-Path $Root 'docs/commands') -OutputPath (Join-Path $ModuleDir 'en-US/BitbucketZdu.dll-Help.xml')
    }
}

function Install-Pester {
    # Pester from NuGet (the Gallery may be unreachable) into the ignored .modules folder.
    $target = Join-Path $Root ".modules/Pester/$PesterVersion"
    if (Test-Path (Join-Path $target 'Pester.psd1')) { return }
    Write-Step "Restore Pester $PesterVersion from NuGet"
    Invoke-Native dotnet @('restore', (Join-Path $Root 'tools/pester-restore/PesterRestore.csproj'), '--nologo', '-v', 'quiet')
    $packages = (& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
    $source = Join-Path $packages.Trim() "pester/$PesterVersion/tools"
    New-Item -ItemType Directory -Path $target -Force | Out-Null
    Copy-Item (Join-Path $source '*') $target -Recurse -Force
}

function Assert-TestServers {
    # The integration tests drive real servers. Install them when we can (root with apt), otherwise say how.
    $missing = @(@('haproxy', 'nginx', 'apache2', 'sshd') | Where-Object {
        -not (Get-Command $_ -ErrorAction SilentlyContinue) -and -not (Test-Path "/usr/sbin/$_")
    })
    # The AWS ELB tests run Debian's AWS CLI v2 by its path (a pip-installed v1 on PATH does not count).
    if ($IsLinux -and -not (Test-Path '/usr/bin/aws')) { $missing += 'awscli' }
    if (-not $missing) { return }
    $isRoot = $IsLinux -and ((& id -u) -eq '0')
    if ($isRoot -and (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        Write-Step "Install test servers: $($missing -join ', ')"
        Invoke-Native bash @((Join-Path $Root '.ci/install-test-servers.sh'))
        return
    }
    throw "The integration tests need real servers that are not installed: $($missing -join ', '). On Debian/Ubuntu run: sudo bash .ci/install-test-servers.sh"
}

function Read-TrxCounts([string] $Directory) {
    $passed = 0; $failed = 0; $skipped = 0
    foreach ($trx in Get-ChildItem $Directory -Filter '*.trx' -ErrorAction SilentlyContinue) {
        [xml] $doc = Get-Content -LiteralPath $trx.FullName -Raw
        $c = $doc.TestRun.ResultSummary.Counters
        $passed += [int] $c.passed
        $failed += [int] $c.failed + [int] $c.error + [int] $c.timeout + [int] $c.aborted
        $skipped += [int] $c.notExecuted
    }
    [pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = $skipped }
}

function Invoke-Test {
    Invoke-Build
    Assert-TestServers
    Install-Pester
    & (Join-Path $Root 'tools/Install-Azurite.ps1') | Out-Null   # the blob journal tests run Azurite from npm

    $results = Join-Path $Out 'TestResults'
    if (Test-Path $results) { Remove-Item $results -Recurse -Force }
    New-Item -ItemType Directory $results -Force | Out-Null
    $reliability = Join-Path $Out 'reliability'   # suite files of this run only (tools/New-ReliabilityReport.ps1)
    if (Test-Path $reliability) { Remove-Item $reliability -Recurse -Force }

    Write-Step 'xUnit'
    $testArgs = @('test', (Join-Path $Root 'BitbucketZdu.sln'), '-c', $Configuration, '--no-build', '--nologo',
        '--results-directory', $results, '--logger', 'trx', '--logger', 'console;verbosity=minimal')
    if ($Filter) { $testArgs += @('--filter', $Filter) }
    & dotnet @testArgs
    $xunitExit = $LASTEXITCODE
    $xunit = Read-TrxCounts $results

    Write-Step 'Pester'
    $pesterOut = Join-Path $results 'pester-counts.json'
    $pwsh = Get-PwshCommand
    $pesterArgs = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/pester/Invoke-PesterSuite.ps1'),
        '-ModulePath', (Join-Path $ModuleDir 'BitbucketZdu.psd1'), '-PesterPath', (Join-Path $Root ".modules/Pester/$PesterVersion/Pester.psd1"),
        '-CountsPath', $pesterOut, '-ResultPath', (Join-Path $results 'pester.xml'))
    if ($Filter) { $pesterArgs += @('-Filter', $Filter) }
    $exe = $pwsh[0]; $pre = @($pwsh | Select-Object -Skip 1)
    # No ANSI colour codes in Pester's process and the pwsh processes its tests start: they would reach the JUnit XML.
    $noColor = $env:NO_COLOR
    $env:NO_COLOR = '1'
    try { & $exe @pre @pesterArgs } finally { $env:NO_COLOR = $noColor }
    $pesterExit = $LASTEXITCODE
    $pester = if (Test-Path $pesterOut) { Get-Content $pesterOut -Raw | ConvertFrom-Json } else { $null }
    # No counts (or empty ones) means Pester did not report a run: that is a failure, never a silent pass.
    if ($null -eq $pester -or $null -eq $pester.Passed -or $null -eq $pester.Failed) { $pester = [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } }

    $passed = $xunit.Passed + $pester.Passed
    $failed = $xunit.Failed + $pester.Failed
    if ($xunitExit -ne 0 -and $xunit.Failed -eq 0) { $failed++ }   # a crashed test host counts as a failure
    if ($pesterExit -ne 0 -and $pester.Failed -eq 0) { $failed++ }

    # ---- Reliability evidence: no canary secret in any test output; docs/reliability.md from the suite files.
    try {
        & (Join-Path $Root 'tools/Test-CanarySecret.ps1') -Path $Out -ResultPath (Join-Path $reliability 'secret-scan.json')
    }
    catch {
        Write-Host $_.Exception.Message -ForegroundColor Red
        $failed++
    }
    if (-not $Filter -and (Test-Path (Join-Path $reliability 'bad-input.json'))) {
        & (Join-Path $Root 'tools/New-ReliabilityReport.ps1') -InputPath $reliability -OutputPath (Join-Path $Root 'docs/reliability.md')
    }
    # ---- end of reliability evidence
    Write-Host ''
    Write-Host ("xUnit: {0} passed, {1} failed, {2} skipped; Pester: {3} passed, {4} failed, {5} skipped" -f `
            $xunit.Passed, $xunit.Failed, $xunit.Skipped, $pester.Passed, $pester.Failed, $pester.Skipped)
    Write-Host "$passed passed, $failed failed"
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

function Invoke-Package {
    Invoke-Build
    $packages = Join-Path $Out 'packages'
    New-Item -ItemType Directory $packages -Force | Out-Null
    # Azure Automation imports a zip whose root folder is the module name (tools/New-ModuleZip.ps1; the Pester
    # package tests call the same scripts).
    $zip = & (Join-Path $Root 'tools/New-ModuleZip.ps1') -ModuleDir $ModuleDir -OutputDirectory $packages
    Write-Step "Package $($zip.FullName)"
    $nupkgScript = Join-Path $Root 'tools/New-ModuleNupkg.ps1'
    if (Test-Path $nupkgScript) {
        $nupkg = & $nupkgScript -ModuleDir $ModuleDir -OutputDirectory $packages
        Write-Step "Package $($nupkg.FullName)"
    }
}

function Invoke-Demo {
    $demo = Join-Path $Root 'tools/Start-Demo.ps1'
    if (-not (Test-Path $demo)) {
        Invoke-Build
        Write-Host 'The one-command demo (simulated cluster + rolling upgrade) arrives with the simulator and orchestrator work.'
        Write-Host "Until then the module is built at $ModuleDir; Import-Module it and see README.md for the cmdlets."
        return
    }
    Invoke-Build
    & $demo -ModulePath (Join-Path $ModuleDir 'BitbucketZdu.psd1') -Configuration $Configuration
    if (-not $?) { exit 1 }
}

function Invoke-Bench {
    Invoke-Build
    $benchScript = Join-Path $Root 'bench/Invoke-Benchmarks.ps1'
    if (-not (Test-Path $benchScript)) { Write-Host 'No benchmarks yet.'; return }
    & $benchScript -ModulePath (Join-Path $ModuleDir 'BitbucketZdu.psd1') -Configuration $Configuration
}

function Invoke-Clean {
    Write-Step 'Clean'
    foreach ($d in @($Out) + (Get-ChildItem $Root -Directory -Recurse -Include bin, obj -ErrorAction SilentlyContinue | ForEach-Object FullName)) {
        if (Test-Path $d) { Remove-Item $d -Recurse -Force }
    }
}

$unknown = @($Task | Where-Object { -not $ValidTasks.Contains($_) })
if ($unknown) {
    $list = ($ValidTasks.GetEnumerator() | ForEach-Object { '  {0,-8} {1}' -f $_.Key, $_.Value }) -join [Environment]::NewLine
    [Console]::Error.WriteLine("build.ps1: unknown task '$($unknown -join "', '")'. Valid tasks:$([Environment]::NewLine)$list")
    exit 2
}

foreach ($t in $Task) {
    switch ($t) {
        'Build' { Invoke-Build }
        'Test' { Invoke-Test }
        'Package' { Invoke-Package }
        'Demo' { Invoke-Demo }
        'Bench' { Invoke-Bench }
        'Clean' { Invoke-Clean }
        'Help' { $ValidTasks.GetEnumerator() | ForEach-Object { '  {0,-8} {1}' -f $_.Key, $_.Value } }
    }
}
