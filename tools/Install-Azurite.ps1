<#
.SYNOPSIS
    Installs Azurite (the Azure Storage emulator, from npm) into the ignored .tools-cache/azurite folder when missing.

.DESCRIPTION
    The blob journal tests start 'azurite-blob' on loopback. This puts a pinned version next to the repo (npm install
    --prefix), so nothing is installed globally. build.ps1 Test calls it before xUnit; the test fixture calls it too
    when run alone (dotnet test). Needs Node.js and npm on the PATH. Prints the path of azurite-blob.

.PARAMETER Version
    The Azurite version (default the pinned one).
#>
[CmdletBinding()]
param([string] $Version = '3.37.0')

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$root = Split-Path $PSScriptRoot -Parent
$prefix = Join-Path $root '.tools-cache/azurite'
$bin = Join-Path $prefix ("node_modules/.bin/" + $(if ($IsWindows) { 'azurite-blob.cmd' } else { 'azurite-blob' }))
$installed = Join-Path $prefix 'node_modules/azurite/package.json'

if ((Test-Path $bin) -and (Test-Path $installed) -and ((Get-Content $installed -Raw | ConvertFrom-Json).version -eq $Version)) {
    return $bin
}
foreach ($tool in 'node', 'npm') {
    if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
        throw "Azurite needs '$tool' on the PATH. Install Node.js with npm (Debian/Ubuntu: sudo apt-get install nodejs npm), then run tools/Install-Azurite.ps1 again."
    }
}
Write-Host "==> Install Azurite $Version into $prefix (npm)" -ForegroundColor Cyan
New-Item -ItemType Directory -Path $prefix -Force | Out-Null
& npm install --prefix $prefix --no-audit --no-fund --loglevel=error "azurite@$Version" | Out-Host
if ($LASTEXITCODE -ne 0 -or -not (Test-Path $bin)) { throw "npm install azurite@$Version failed (exit code $LASTEXITCODE). Check that the npm registry is reachable." }
$bin
