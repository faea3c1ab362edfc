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
    try { $result | Export-JUnitReport -Path $ResultPath }
    catch { Write-Warning "JUnit report '$ResultPath' not written: $($_.Exception.Message)" }
}
if ($result.Result -ne 'Passed') { exit 1 }
