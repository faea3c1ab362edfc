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
. (Join-Path $PSScriptRoot 'BuiltModule.ps1')   # also loads System.IO.Compression
$module = Get-BuiltModule -ModuleDir $ModuleDir
$name = $module.Name
$zipPath = New-EmptyPackagePath $OutputDirectory "$name.$($module.Manifest.ModuleVersion).zip"

$zip = [System.IO.Compression.ZipFile]::Open($zipPath, [System.IO.Compression.ZipArchiveMode]::Create)
try {
    foreach ($f in $module.Files) {
        [void] [System.IO.Compression.ZipFileExtensions]::CreateEntryFromFile($zip, $f.Path, "$name/$($f.Entry)", [System.IO.Compression.CompressionLevel]::Optimal)
    }
}
finally { $zip.Dispose() }
Get-Item -LiteralPath $zipPath
