<#
.SYNOPSIS
    Runs the Pester suite against the built module in a clean process and writes the counts for build.ps1.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $CountsPath,
    [string] $ResultPath,
    [string] $Filter
)
$ErrorActionPreference = 'Stop'
# Nothing that reaches a test report may carry ANSI escapes (XML rejects 0x1B): plain text here and in every child.
$env:NO_COLOR = '1'
if ($PSStyle) { $PSStyle.OutputRendering = 'PlainText' }
Import-Module $PesterPath -Force
$env:BITBUCKETZDU_MODULE = (Resolve-Path $ModulePath).Path

$config = New-PesterConfiguration
$config.Run.Path = $PSScriptRoot
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
if ($Filter) { $config.Filter.FullName = "*$Filter*" }

$result = Invoke-Pester -Configuration $config
[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount + $result.NotRunCount
} | ConvertTo-Json | Set-Content -Path $CountsPath
# The report is written after the counts, so a failing report writer cannot hide the real results.
if ($ResultPath) {
    # XML 1.0 has no place for control characters (a test's message with ANSI colour codes from a child process made
    # Export-JUnitReport throw): drop escape sequences, then every other control character but tab, CR and LF.
    function Remove-ControlCharacter([string] $Text) {
        if (-not $Text) { return $Text }
        $Text -replace '\x1B\[[0-?]*[ -/]*[@-~]', '' -replace '[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]', ''
    }
    $withErrors = @($result.Tests) + @($result.Failed) + @($result.FailedBlocks) + @($result.FailedContainers) | Where-Object { $_ }
    foreach ($item in $withErrors) {
        foreach ($name in 'ExpandedPath', 'ExpandedName', 'StandardOutput') {
            if ($item.PSObject.Properties[$name] -and $item.$name -is [string]) { try { $item.$name = Remove-ControlCharacter $item.$name } catch { } }
        }
        foreach ($e in @($item.ErrorRecord)) {
            foreach ($name in 'DisplayErrorMessage', 'DisplayStackTrace') {
                if ($e -and $e.PSObject.Properties[$name]) { $e.$name = Remove-ControlCharacter $e.$name }
            }
        }
    }
    try { $result | Export-JUnitReport -Path $ResultPath }
    catch { Write-Warning "JUnit report '$ResultPath' not written: $($_.Exception.Message)" }
}
if ($result.Result -ne 'Passed') { exit 1 }
