<#
.SYNOPSIS
    Scans test results and logs for the canary secrets of the test suite; fails when one is found.

.DESCRIPTION
    The canary password and token are read from tests/BitbucketZdu.TestSupport/Canary.cs (never repeated here).
    Every file under -Path (recursively; the assembled module folder excluded) is searched for each canary, for its
    Basic-auth base64 form (user:secret) and for its URL-encoded form. Writes the result as a suite file for
    tools/New-ReliabilityReport.ps1 (-ResultPath) and throws, naming the files (never the secret), when one leaked.

.PARAMETER Path
    Folders to scan, e.g. out/TestResults and out/reliability.

.PARAMETER ResultPath
    Where to write the scan result (JSON), e.g. out/reliability/secret-scan.json.

.EXAMPLE
    ./tools/Test-CanarySecret.ps1 -Path out/TestResults, out/reliability -ResultPath out/reliability/secret-scan.json
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string[]] $Path,
    [string] $ResultPath,
    [string] $CanarySource = (Join-Path $PSScriptRoot '../tests/BitbucketZdu.TestSupport/Canary.cs')
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$source = Get-Content -LiteralPath $CanarySource -Raw
$user = [regex]::Match($source, 'UserName\s*=\s*"([^"]+)"').Groups[1].Value
$secrets = @([regex]::Matches($source, '(?:Password|Token)\s*=\s*"([^"]+)"') | ForEach-Object { $_.Groups[1].Value })
if (-not $user -or $secrets.Count -lt 2) { throw "Could not read the canary user, password and token from $CanarySource." }
$forms = foreach ($s in $secrets) {
    $s
    [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("${user}:$s"))
    [Uri]::EscapeDataString($s)
}
$forms = @($forms | Select-Object -Unique)

$files = @(foreach ($p in $Path) {
        if (Test-Path -LiteralPath $p) { Get-ChildItem -LiteralPath $p -Recurse -File }
    }) | Where-Object { $_.FullName -notmatch '[\\/]out[\\/]BitbucketZdu[\\/]' -and $_.Extension -notin '.dll', '.nupkg', '.zip' }

$scanned = foreach ($f in $files) {
    $text = [IO.File]::ReadAllText($f.FullName)
    [pscustomobject]@{ File = $f; Leaked = @($forms | Where-Object { $text.Contains($_) }).Count -gt 0 }
}
$scanned = @($scanned)
$leaked = @($scanned | Where-Object Leaked | ForEach-Object { $_.File.FullName })
# One case per kind of file (the file names carry host names and timestamps; the error names the files).
$cases = @($scanned | Group-Object { if ($_.File.Extension) { $_.File.Extension } else { '(none)' } } | Sort-Object Name | ForEach-Object {
        $bad = @($_.Group | Where-Object Leaked).Count
        [pscustomobject]@{ Case = "$($_.Name) files ($($_.Count))"; Area = 'test output'; Outcome = if ($bad) { "leaked in $bad" } else { 'clean' }; ErrorId = $null }
    })

if ($ResultPath) {
    New-Item -ItemType Directory -Path (Split-Path $ResultPath) -Force | Out-Null
    [pscustomobject]@{ Suite = 'Secret scan'; Generated = (Get-Date).ToUniversalTime().ToString('u'); Cases = $cases } |
        ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $ResultPath -Encoding utf8
}
Write-Host "Secret scan: $($scanned.Count) file(s) scanned for $($forms.Count) canary form(s), $($leaked.Count) leak(s)."
if ($leaked) {
    throw "A canary secret leaked into $($leaked.Count) test output file(s): $($leaked -join ', '). Find the test that printed it and the code path that let the secret through."
}
