<#
.SYNOPSIS
    Packs a built module folder into a .nupkg that PSResourceGet and the PowerShell Gallery accept.

.DESCRIPTION
    Generates the nuspec from the module manifest the way Publish-PSResource does (id, version, authors, owners,
    description, copyright, release notes, project and licence URLs, and the Gallery's tags: PSModule,
    PSEdition_<edition>, PSIncludes_Cmdlet, PSCmdlet_<name>, PSCommand_<name>, plus the manifest's own tags) and writes
    an OPC package: the nuspec, the module files at the package root, [Content_Types].xml, _rels/.rels and the core
    properties part. Only the module folder goes in: no pdb, no test or build leftovers.

    Works in Windows PowerShell 5.1 and PowerShell 7 (entry names always use '/').

.PARAMETER ModuleDir
    The built module folder, e.g. out/BitbucketZdu/0.1.0 (holds <Name>.psd1).

.PARAMETER OutputDirectory
    Where <Name>.<Version>.nupkg is written (created when missing). The path of the package is returned.
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
$m = $module.Manifest
$psData = if ($m.ContainsKey('PrivateData') -and $m.PrivateData.ContainsKey('PSData')) { $m.PrivateData.PSData } else { @{} }

foreach ($required in 'ModuleVersion', 'Author', 'Description') {
    if (-not $m.ContainsKey($required) -or -not $m[$required]) { throw "The manifest of $($module.Directory) has no $required; the Gallery requires it." }
}
$version = [string] $m.ModuleVersion
if ($psData.ContainsKey('Prerelease') -and $psData.Prerelease) { $version = "$version-$($psData.Prerelease)" }

function Get-List($table, [string] $key) {
    if ($table.ContainsKey($key) -and $null -ne $table[$key]) { return @($table[$key] | Where-Object { $_ -and $_ -ne '*' }) }
    return @()
}

# The Gallery's tag scheme (what Publish-PSResource / Publish-Module write into the nuspec).
$tags = [System.Collections.Generic.List[string]]::new()
function Add-Tag([string] $tag) { if ($tag -and -not $tags.Contains($tag)) { $tags.Add($tag) } }
Add-Tag 'PSModule'
foreach ($t in (Get-List $psData 'Tags')) { Add-Tag $t }
foreach ($e in (Get-List $m 'CompatiblePSEditions')) { Add-Tag "PSEdition_$e" }
$cmdlets = Get-List $m 'CmdletsToExport'
$functions = Get-List $m 'FunctionsToExport'
if ($cmdlets) { Add-Tag 'PSIncludes_Cmdlet' }
foreach ($c in $cmdlets) { Add-Tag "PSCmdlet_$c"; Add-Tag "PSCommand_$c" }
if ($functions) { Add-Tag 'PSIncludes_Function' }
foreach ($f in $functions) { Add-Tag "PSFunction_$f"; Add-Tag "PSCommand_$f" }
$badTag = $tags | Where-Object { $_ -match '\s' } | Select-Object -First 1
if ($badTag) { throw "The manifest tag '$badTag' contains white space; the Gallery refuses it." }

function Get-PSDataValue([string] $key) { if ($psData.ContainsKey($key)) { [string] $psData[$key] } else { '' } }

# The nuspec, written with XmlWriter so every value is escaped.
$nuspecNs = 'http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd'
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$nuspecStream = [System.IO.MemoryStream]::new()
$w = [System.Xml.XmlWriter]::Create($nuspecStream, $settings)
$w.WriteStartDocument()
$w.WriteStartElement('package', $nuspecNs)
$w.WriteStartElement('metadata', $nuspecNs)
$w.WriteElementString('id', $nuspecNs, $name)
$w.WriteElementString('version', $nuspecNs, $version)
$w.WriteElementString('authors', $nuspecNs, [string] $m.Author)
$owners = if ($m.ContainsKey('CompanyName') -and $m.CompanyName) { [string] $m.CompanyName } else { [string] $m.Author }
$w.WriteElementString('owners', $nuspecNs, $owners)
$requireAcceptance = $psData.ContainsKey('RequireLicenseAcceptance') -and [bool] $psData.RequireLicenseAcceptance
$w.WriteElementString('requireLicenseAcceptance', $nuspecNs, $requireAcceptance.ToString().ToLowerInvariant())
if (Get-PSDataValue 'LicenseUri') { $w.WriteElementString('licenseUrl', $nuspecNs, (Get-PSDataValue 'LicenseUri')) }
if (Get-PSDataValue 'ProjectUri') { $w.WriteElementString('projectUrl', $nuspecNs, (Get-PSDataValue 'ProjectUri')) }
if (Get-PSDataValue 'IconUri') { $w.WriteElementString('iconUrl', $nuspecNs, (Get-PSDataValue 'IconUri')) }
$w.WriteElementString('description', $nuspecNs, [string] $m.Description)
if (Get-PSDataValue 'ReleaseNotes') { $w.WriteElementString('releaseNotes', $nuspecNs, (Get-PSDataValue 'ReleaseNotes')) }
if ($m.ContainsKey('Copyright') -and $m.Copyright) { $w.WriteElementString('copyright', $nuspecNs, [string] $m.Copyright) }
$w.WriteElementString('tags', $nuspecNs, ($tags -join ' '))
$deps = Get-List $m 'RequiredModules'
if ($deps) {
    $w.WriteStartElement('dependencies', $nuspecNs)
    foreach ($d in $deps) {
        $w.WriteStartElement('dependency', $nuspecNs)
        if ($d -is [hashtable]) {
            $w.WriteAttributeString('id', [string] $d.ModuleName)
            $min = if ($d.ContainsKey('RequiredVersion')) { "[$($d.RequiredVersion)]" } elseif ($d.ContainsKey('ModuleVersion')) { [string] $d.ModuleVersion } else { $null }
            if ($min) { $w.WriteAttributeString('version', $min) }
        }
        else { $w.WriteAttributeString('id', [string] $d) }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
}
$w.WriteEndElement()
$w.WriteEndElement()
$w.WriteEndDocument()
$w.Flush(); $w.Dispose()
$nuspecBytes = $nuspecStream.ToArray()

$files = $module.Files
$nupkg = New-EmptyPackagePath $OutputDirectory "$name.$version.nupkg"

function Add-Entry([System.IO.Compression.ZipArchive] $zip, [string] $entryName, [byte[]] $bytes) {
    $entry = $zip.CreateEntry($entryName, [System.IO.Compression.CompressionLevel]::Optimal)
    $s = $entry.Open()
    try { $s.Write($bytes, 0, $bytes.Length) } finally { $s.Dispose() }
}
$utf8 = [System.Text.UTF8Encoding]::new($false)
$psmdcpId = [guid]::NewGuid().ToString('N')
$extensions = @($files | ForEach-Object { [System.IO.Path]::GetExtension($_.Entry).TrimStart('.') } | Where-Object { $_ } | Sort-Object -Unique)
$contentTypes = "<?xml version=`"1.0`" encoding=`"utf-8`"?>`n<Types xmlns=`"http://schemas.openxmlformats.org/package/2006/content-types`">" +
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />' +
    '<Default Extension="nuspec" ContentType="application/octet" />' +
    '<Default Extension="psmdcp" ContentType="application/vnd.openxmlformats-package.core-properties+xml" />' +
    (($extensions | Where-Object { $_ -notin 'rels', 'nuspec', 'psmdcp' } | ForEach-Object { "<Default Extension=`"$([System.Security.SecurityElement]::Escape($_))`" ContentType=`"application/octet`" />" }) -join '') +
    '</Types>'
$rels = "<?xml version=`"1.0`" encoding=`"utf-8`"?>`n<Relationships xmlns=`"http://schemas.openxmlformats.org/package/2006/relationships`">" +
    "<Relationship Type=`"http://schemas.microsoft.com/packaging/2010/07/manifest`" Target=`"/$name.nuspec`" Id=`"R$($psmdcpId.Substring(0, 16))`" />" +
    "<Relationship Type=`"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties`" Target=`"/package/services/metadata/core-properties/$psmdcpId.psmdcp`" Id=`"R$($psmdcpId.Substring(16))`" />" +
    '</Relationships>'
$esc = { param($s) [System.Security.SecurityElement]::Escape([string] $s) }
$coreProps = "<?xml version=`"1.0`" encoding=`"utf-8`"?>`n<coreProperties xmlns:dc=`"http://purl.org/dc/elements/1.1/`" xmlns:dcterms=`"http://purl.org/dc/terms/`" xmlns:xsi=`"http://www.w3.org/2001/XMLSchema-instance`" xmlns=`"http://schemas.openxmlformats.org/package/2006/metadata/core-properties`">" +
    "<dc:creator>$(& $esc $m.Author)</dc:creator><dc:description>$(& $esc $m.Description)</dc:description><dc:identifier>$(& $esc $name)</dc:identifier>" +
    "<version>$(& $esc $version)</version><keywords>$(& $esc ($tags -join ' '))</keywords><lastModifiedBy>New-ModuleNupkg.ps1</lastModifiedBy></coreProperties>"

$stream = [System.IO.File]::Open($nupkg, [System.IO.FileMode]::CreateNew)
try {
    $zip = [System.IO.Compression.ZipArchive]::new($stream, [System.IO.Compression.ZipArchiveMode]::Create)
    try {
        Add-Entry $zip '_rels/.rels' $utf8.GetBytes($rels)
        Add-Entry $zip "$name.nuspec" $nuspecBytes
        foreach ($f in $files) { Add-Entry $zip $f.Entry ([System.IO.File]::ReadAllBytes($f.Path)) }
        Add-Entry $zip "package/services/metadata/core-properties/$psmdcpId.psmdcp" $utf8.GetBytes($coreProps)
        Add-Entry $zip '[Content_Types].xml' $utf8.GetBytes($contentTypes)
    }
    finally { $zip.Dispose() }
}
finally { $stream.Dispose() }

Write-Verbose "Packed $(@($files).Count) module files into $nupkg"
Get-Item -LiteralPath $nupkg
