# Dot-sourced by New-ModuleZip.ps1 and New-ModuleNupkg.ps1: what a built module folder holds, and the zip types.
Add-Type -AssemblyName System.IO.Compression
Add-Type -AssemblyName System.IO.Compression.FileSystem

function Get-BuiltModule {
    <#
    .SYNOPSIS
        Reads a built module folder: its name and manifest, and the files that ship (relative names with '/'; no pdb,
        no packages, nothing from a bin/obj/TestResults tree that may sit beside them).
    #>
    param([Parameter(Mandatory)] [string] $ModuleDir)
    $dir = (Resolve-Path -LiteralPath $ModuleDir).Path
    $manifestFile = Get-ChildItem -LiteralPath $dir -Filter '*.psd1' | Select-Object -First 1
    if (-not $manifestFile) { throw "No module manifest (*.psd1) in '$dir'. Run 'build.ps1 Build' first." }
    $excluded = '\.(pdb|nupkg|zip)$|(^|/)(bin|obj|TestResults)/'
    $files = @(Get-ChildItem -LiteralPath $dir -Recurse -File | ForEach-Object {
            $relative = $_.FullName.Substring($dir.Length).TrimStart('\', '/') -replace '\\', '/'
            if ($relative -notmatch $excluded) { [pscustomobject]@{ Path = $_.FullName; Entry = $relative } }
        })
    [pscustomobject]@{
        Directory = $dir
        Name      = $manifestFile.BaseName
        Manifest  = Import-PowerShellDataFile -LiteralPath $manifestFile.FullName
        Files     = $files
    }
}

function New-EmptyPackagePath([string] $OutputDirectory, [string] $FileName) {
    # The package's full path in OutputDirectory (created when missing), with any previous package removed.
    New-Item -ItemType Directory -Path $OutputDirectory -Force | Out-Null
    $path = Join-Path (Resolve-Path -LiteralPath $OutputDirectory).Path $FileName
    if (Test-Path -LiteralPath $path) { Remove-Item -LiteralPath $path -Force }
    $path
}
