<#
.SYNOPSIS
    Packs a built module folder into the .zip that Azure Automation imports (Modules > Add a module).

.DESCRIPTION
    Azure Automation wants a zip whose single root folder is the module name: BitbucketZdu/BitbucketZdu.psd1 and
    the files beside it. Entry names always use '/' (Compress-Archive in Windows PowerShell 5.1 writes '\', which
    other unzip tools read as part of a file name). The path of the zip is returned.

.PARAMETER ModuleDir
    The built module folder, e.g. out/BitbucketZdu/0.1.0 (holds <Name>.psd1).

.PARAMETER OutputDirectory
    Where <Name>.<Version>.zip is written (created when missing).
#>
[CmdletBinding()]
[OutputType([System.IO.FileInfo])]
param(
    [Parameter(Mandatory)] [string] $ModuleDir,
    [Parameter(Mandatory)] [string] $OutputDirectory
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Add-Type -AssemblyName System.IO.Compression
Add-Type -AssemblyName System.IO.Compression.FileSystem

$ModuleDir = (Resolve-Path -LiteralPath $ModuleDir).Path
$manifestFile = Get-ChildItem -LiteralPath $ModuleDir -Filter '*.psd1' | Select-Object -First 1
if (-not $manifestFile) { throw "No module manifest (*.psd1) in '$ModuleDir'. Run 'build.ps1 Build' first." }
$name = $manifestFile.BaseName
$version = (Import-PowerShellDataFile -LiteralPath $manifestFile.FullName).ModuleVersion

New-Item -ItemType Directory -Path $OutputDirectory -Force | Out-Null
$zipPath = Join-Path (Resolve-Path -LiteralPath $OutputDirectory).Path "$name.$version.zip"
if (Test-Path -LiteralPath $zipPath) { Remove-Item -LiteralPath $zipPath -Force }

$zip = [System.IO.Compression.ZipFile]::Open($zipPath, [System.IO.Compression.ZipArchiveMode]::Create)
try {
    foreach ($f in Get-ChildItem -LiteralPath $ModuleDir -Recurse -File) {
        $relative = $f.FullName.Substring($ModuleDir.Length).TrimStart('\', '/') -replace '\\', '/'
        if ($relative -match '\.(pdb|nupkg|zip)$') { continue }
        [void] [System.IO.Compression.ZipFileExtensions]::CreateEntryFromFile($zip, $f.FullName, "$name/$relative", [System.IO.Compression.CompressionLevel]::Optimal)
    }
}
finally { $zip.Dispose() }
Get-Item -LiteralPath $zipPath
