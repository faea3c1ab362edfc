# The packages as admins install them: the Azure Automation .zip imported in a clean PowerShell, the .nupkg read as
# the Gallery and PSResourceGet read it, and installed with Install-PSResource from a local folder repository.
# The packages are built here from the built module with the same scripts 'build.ps1 Package' calls.
BeforeAll {
    $script:Manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $script:ModuleDir = Split-Path $env:BITBUCKETZDU_MODULE -Parent
    $script:Tools = Join-Path $PSScriptRoot '../../tools'
    $script:Packages = Join-Path $TestDrive 'packages'
    $script:Zip = & (Join-Path $Tools 'New-ModuleZip.ps1') -ModuleDir $ModuleDir -OutputDirectory $Packages
    $script:Nupkg = & (Join-Path $Tools 'New-ModuleNupkg.ps1') -ModuleDir $ModuleDir -OutputDirectory $Packages
    $script:ModuleFiles = @(Get-ChildItem $ModuleDir -Recurse -File | ForEach-Object {
            $_.FullName.Substring($ModuleDir.Length).TrimStart('\', '/') -replace '\\', '/' } | Sort-Object)
    Add-Type -AssemblyName System.IO.Compression.FileSystem

    function script:Get-ZipEntryNames([string] $Path) {
        $z = [System.IO.Compression.ZipFile]::OpenRead($Path)
        try { @($z.Entries | ForEach-Object FullName) } finally { $z.Dispose() }
    }

    # A clean PowerShell: the same one running the tests, no profile, its own process and environment.
    function script:Invoke-CleanPwsh([string] $Script, [hashtable] $Environment = @{}) {
        $dll = Join-Path $PSHOME 'pwsh.dll'
        $exe, $pre = if (Test-Path $dll) { 'dotnet', @($dll) } else { (Get-Process -Id $PID).Path, @() }
        $file = Join-Path $TestDrive ("child-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
        Set-Content -Path $file -Value $Script -Encoding utf8
        $saved = @{}
        foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
        try {
            $out = & $exe @pre -NoProfile -NonInteractive -File $file 2>&1 | Out-String
            $code = $LASTEXITCODE
        }
        finally { foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) } }
        if ($code -ne 0) { throw "The child PowerShell failed ($code): $out" }
        $json = ($out -split "`n" | Where-Object { $_ -like 'RESULT:*' } | Select-Object -Last 1) -replace '^RESULT:', ''
        if (-not $json) { throw "The child PowerShell printed no result: $out" }
        $json | ConvertFrom-Json
    }

    # What the child reports about the module it imported, as one JSON line.
    $script:ProbeModule = @'
$m = Get-Module BitbucketZdu
$help = Get-Help Connect-BbCluster -Examples
$about = Get-Help about_BitbucketZdu
'RESULT:' + (@{
    Base     = $m.ModuleBase
    Version  = $m.Version.ToString()
    Commands = @($m.ExportedCommands.Keys | Sort-Object)
    Synopsis = $help.Synopsis
    Examples = @($help.examples.example).Count
    About    = [bool] ($about | Out-String -Width 200 | Select-String 'upgrade' -Quiet)
} | ConvertTo-Json -Compress)
'@
}

Describe 'Azure Automation .zip' {
    It 'has the module name as its single root folder and every module file under it' {
        $names = Get-ZipEntryNames $Zip.FullName
        $names | ForEach-Object { ($_ -split '/')[0] } | Sort-Object -Unique | Should -Be 'BitbucketZdu'
        ($names | ForEach-Object { $_.Substring('BitbucketZdu/'.Length) } | Sort-Object) | Should -Be $ModuleFiles
        $names | Should -Not -Contain 'BitbucketZdu\BitbucketZdu.psd1'
    }

    It 'imports by folder name in a clean PowerShell, exports the manifest''s cmdlets and has offline help' {
        $expand = Join-Path $TestDrive 'automation-modules'
        Expand-Archive -LiteralPath $Zip.FullName -DestinationPath $expand
        $r = Invoke-CleanPwsh -Environment @{ PSModulePath = $expand + [IO.Path]::PathSeparator + $env:PSModulePath } -Script (@'
$ErrorActionPreference = 'Stop'
Import-Module BitbucketZdu
'@ + "`n" + $ProbeModule)
        $r.Base | Should -BeLike "$expand*"
        $r.Version | Should -Be $Manifest.ModuleVersion
        @($r.Commands) | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        $r.Synopsis | Should -Not -BeNullOrEmpty
        $r.Synopsis | Should -Not -BeLike 'Connect-BbCluster *'
        $r.Examples | Should -BeGreaterOrEqual 2
        $r.About | Should -BeTrue
    }
}

Describe 'PowerShell Gallery .nupkg' {
    BeforeAll {
        $script:Entries = Get-ZipEntryNames $Nupkg.FullName
        $z = [System.IO.Compression.ZipFile]::OpenRead($Nupkg.FullName)
        try {
            $reader = [IO.StreamReader]::new($z.GetEntry('BitbucketZdu.nuspec').Open())
            [xml] $script:Nuspec = $reader.ReadToEnd()
            $reader.Dispose()
        }
        finally { $z.Dispose() }
        $script:Meta = $Nuspec.package.metadata
        $script:Tags = $Meta.tags -split ' '
    }

    It 'is named <id>.<version>.nupkg and holds the OPC parts and the nuspec at the root' {
        $Nupkg.Name | Should -Be "BitbucketZdu.$($Manifest.ModuleVersion).nupkg"
        $Entries | Should -Contain 'BitbucketZdu.nuspec'
        $Entries | Should -Contain '[Content_Types].xml'
        $Entries | Should -Contain '_rels/.rels'
        @($Entries | Where-Object { $_ -like 'package/services/metadata/core-properties/*.psmdcp' }).Count | Should -Be 1
    }

    It 'holds exactly the module files at the package root, nothing else from the build' {
        $payload = $Entries | Where-Object { $_ -notin 'BitbucketZdu.nuspec', '[Content_Types].xml', '_rels/.rels' -and $_ -notlike 'package/*' }
        ($payload | Sort-Object) | Should -Be $ModuleFiles
        $Entries | Should -Contain 'BitbucketZdu.psd1'
        $Entries | Where-Object { $_ -match '\.pdb$|(^|/)(bin|obj)/|\\' } | Should -BeNullOrEmpty
    }

    It 'carries the manifest''s metadata' {
        $psData = $Manifest.PrivateData.PSData
        $Nuspec.package.NamespaceURI | Should -Be 'http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd'
        $Meta.id | Should -Be 'BitbucketZdu'
        $Meta.version | Should -Be $Manifest.ModuleVersion
        $Meta.authors | Should -Be $Manifest.Author
        $Meta.description | Should -Be $Manifest.Description
        $Meta.projectUrl | Should -Be $psData.ProjectUri
        $Meta.licenseUrl | Should -Be $psData.LicenseUri
        $Meta.releaseNotes.Trim() | Should -Be $psData.ReleaseNotes.Trim()
        $Meta.copyright | Should -Be $Manifest.Copyright
        $Meta.requireLicenseAcceptance | Should -Be 'false'
    }

    It 'has the Gallery''s tags: PSModule, editions, and PSCmdlet_/PSCommand_ for <_>' -ForEach @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport) {
        $Tags | Should -Contain 'PSModule'
        $Tags | Should -Contain 'PSIncludes_Cmdlet'
        $Tags | Should -Contain 'PSEdition_Desktop'
        $Tags | Should -Contain 'PSEdition_Core'
        $Tags | Should -Contain "PSCmdlet_$_"
        $Tags | Should -Contain "PSCommand_$_"
    }

    It 'keeps the manifest''s own tags and none twice' {
        foreach ($t in $Manifest.PrivateData.PSData.Tags) { $Tags | Should -Contain $t }
        @($Tags | Group-Object | Where-Object Count -gt 1) | Should -BeNullOrEmpty
    }

    It 'states what the Gallery requires of a module manifest' {
        $Manifest.CompatiblePSEditions | Should -Be @('Desktop', 'Core')
        $Manifest.PowerShellVersion | Should -Be '5.1'
        $Manifest.PrivateData.PSData.ProjectUri | Should -Match '^https://'
        $Manifest.PrivateData.PSData.LicenseUri | Should -Match '^https://'
        $Manifest.PrivateData.PSData.ReleaseNotes | Should -Match $Manifest.ModuleVersion
    }

    It 'installs with Install-PSResource from a local folder repository and imports' {
        # PSResourceGet ships with PowerShell 7.4+; the tests run on the repo's pinned 7.6.
        Get-Module -ListAvailable Microsoft.PowerShell.PSResourceGet | Should -Not -BeNullOrEmpty -Because 'PSResourceGet ships with PowerShell 7.4+ (run the tests with "dotnet pwsh")'
        $repo = Join-Path $TestDrive 'repo'
        New-Item -ItemType Directory $repo | Out-Null
        Copy-Item $Nupkg.FullName $repo
        # The child's user data (repository registrations, CurrentUser modules) lives in a temp folder, so the test
        # registers nothing in the real profile.
        $userData = Join-Path $TestDrive 'userdata'
        $r = Invoke-CleanPwsh -Environment @{ HOME = $userData; XDG_DATA_HOME = $userData; XDG_CONFIG_HOME = $userData; XDG_CACHE_HOME = $userData; LOCALAPPDATA = $userData } -Script (@"
`$ErrorActionPreference = 'Stop'
`$ProgressPreference = 'SilentlyContinue'
Import-Module Microsoft.PowerShell.PSResourceGet
Register-PSResourceRepository -Name ZduLocal -Uri '$repo' -Trusted
`$found = Find-PSResource -Name BitbucketZdu -Repository ZduLocal
if (`$IsWindows) {
    # Install-PSResource's CurrentUser scope is the Documents folder there; save into the temp path instead.
    `$target = Join-Path '$userData' 'Modules'
    Save-PSResource -Name BitbucketZdu -Repository ZduLocal -Path `$target -TrustRepository
    Import-Module (Join-Path `$target 'BitbucketZdu')
} else {
    Install-PSResource -Name BitbucketZdu -Repository ZduLocal -Scope CurrentUser -TrustRepository
    `$installed = Get-InstalledPSResource -Name BitbucketZdu
    Import-Module (Join-Path `$installed.InstalledLocation "BitbucketZdu/`$(`$installed.Version)/BitbucketZdu.psd1")
}
"@ + "`n" + $ProbeModule)
        $r.Base | Should -BeLike "$userData*"
        $r.Version | Should -Be $Manifest.ModuleVersion
        @($r.Commands) | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        $r.Examples | Should -BeGreaterOrEqual 2
        Get-ChildItem $r.Base -Filter '*.nuspec' | Should -BeNullOrEmpty -Because 'PSResourceGet strips the packaging parts'
        Test-Path (Join-Path $r.Base '[Content_Types].xml') -PathType Leaf | Should -BeFalse
    }
}
