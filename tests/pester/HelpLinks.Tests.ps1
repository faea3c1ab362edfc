# Help that links out, as the built module shows it: each cmdlet's HelpUri, its page's "online version" and the MAML's
# first related link are the page's address in the repository (<ProjectUri>/blob/main/docs/commands/<Name>.md), so
# Get-Help -Online opens it; RELATED LINKS print as command names or URLs, never as relative .md paths; and the module
# does not pretend to have updatable help. Cheap: one import, no cluster.
BeforeDiscovery {
    $script:Cmdlets = @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport)
}

BeforeAll {
    $script:Cmdlets = @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport)
    $script:Topics = @(Get-ChildItem -LiteralPath (Join-Path (Split-Path -Parent $env:BITBUCKETZDU_MODULE) 'en-US') -Filter 'about_*.help.txt' | ForEach-Object { $_.Name -replace '\.help\.txt$' })
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $script:Manifest = $manifest
    $script:Project = $manifest.PrivateData.PSData.ProjectUri.TrimEnd('/')
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    $script:Maml = [xml](Get-Content -Raw -LiteralPath (Join-Path (Split-Path -Parent $env:BITBUCKETZDU_MODULE) 'en-US/BitbucketZdu.dll-Help.xml'))
    $script:Ns = [System.Xml.XmlNamespaceManager]::new($Maml.NameTable)
    $Ns.AddNamespace('command', 'http://schemas.microsoft.com/maml/dev/command/2004/10')
    $Ns.AddNamespace('maml', 'http://schemas.microsoft.com/maml/2004/10')
    function Get-OnlineHelpUri([string] $Name) {
        # Get-Help -Online writes "Help URI: <uri>" instead of starting a browser with this hook (PowerShell's own tests
        # use it). Only around -Online: while it is set, Get-Help -Full leaves sections out.
        $hooks = [System.Management.Automation.Internal.InternalTestHooks]
        $hooks::SetTestHook('BypassOnlineHelpRetrieval', $true)
        try { "$(Get-Help $Name -Online)" } finally { $hooks::SetTestHook('BypassOnlineHelpRetrieval', $false) }
    }
}

Describe 'Online help of <_>' -ForEach $Cmdlets {
    BeforeAll {
        $script:Name = $_
        $script:Url = "$Project/blob/main/docs/commands/$Name.md"
        $script:Links = @($Maml.SelectNodes("//command:command[command:details/command:name='$Name']/command:relatedLinks/maml:navigationLink", $Ns))
    }

    It 'has a HelpUri that is its page in the repository' {
        (Get-Command $Name).HelpUri | Should -BeExactly $Url
    }

    It "names the same URL as its page's online version" {
        $front = (Get-Content -Raw -LiteralPath (Join-Path $Root "docs/commands/$Name.md")) -split '(?m)^---\s*$'
        $front[1] | Should -Match "(?m)^online version: $([regex]::Escape($Url))\s*$"
    }

    It 'opens that URL with Get-Help -Online (the first related link with a uri)' {
        $Links[0].linkText | Should -Be 'Online Version:'
        $Links[0].uri | Should -BeExactly $Url
        Get-OnlineHelpUri $Name | Should -BeExactly "Help URI: $Url"
    }

    It 'has related links that are command or topic names (read with Get-Help) or absolute URLs' {
        $Links.Count | Should -BeGreaterThan 1
        foreach ($l in $Links | Select-Object -Skip 1) {
            $l.linkText | Should -Not -BeNullOrEmpty
            if ($l.uri) { $l.uri | Should -Match '^https://' }
            else { @($Cmdlets) + $Topics | Should -Contain $l.linkText -Because "'$($l.linkText)' is read with Get-Help" }
        }
    }
}

Describe 'Get-Help RELATED LINKS on screen' {
    It 'shows the online page, command names alone and URLs (the issue saw "New-BbClusterProfile New-BbClusterProfile.md")' {
        $shown = ((Get-Help Test-BbClusterProfile -Full | Out-String -Width 400) -split 'RELATED LINKS', 2)[1] -split '\r?\n' | ForEach-Object Trim | Where-Object { $_ }
        $shown[0] | Should -BeExactly "Online Version: $Project/blob/main/docs/commands/Test-BbClusterProfile.md"
        $shown | Should -Contain 'New-BbClusterProfile'
        $shown | Should -Contain "Walk-through: a rolling upgrade $Project/blob/main/docs/walkthrough-rolling-upgrade.md"
        $shown -join "`n" | Should -Not -Match '(^|\s)[\w./-]+\.md\b' -Because 'a relative page path means nothing in a console'
    }
}

Describe 'Updatable help' {
    It 'is not promised: no HelpInfoURI, and Update-Help says so and points to Get-Help -Online' {
        $Manifest.ContainsKey('HelpInfoURI') | Should -BeFalse -Because 'no HelpInfo.xml and .cab/.zip are published to serve it'
        { Update-Help -Module BitbucketZdu -UICulture en-US -Force -ErrorAction Stop } | Should -Throw -ErrorId 'HelpInfoUriNotFound,Microsoft.PowerShell.Commands.UpdateHelpCommand'
        foreach ($doc in 'README.md', 'docs/commands/README.md', 'module/en-US/about_BitbucketZdu.help.txt') {
            Get-Content -Raw -LiteralPath (Join-Path $Root $doc) | Should -Not -Match 'Update-Help (-Module BitbucketZdu )?(updates|downloads|gets)' -Because "$doc must not promise it"
        }
    }
}

Describe 'The README tour' {
    It 'uses real cmdlets and parameters' {
        $lines = @(Get-Content -LiteralPath (Join-Path $Root 'README.md'))
        $start = [array]::IndexOf($lines, '```powershell'); $end = $start + 1
        while ($lines[$end] -ne '```') { $end++ }
        $ast = [System.Management.Automation.Language.Parser]::ParseInput(($lines[($start + 1)..($end - 1)] -join "`n"), [ref] $null, [ref] $null)
        $calls = @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.CommandAst] -and $a.GetCommandName() -like '*-Bb*' }, $true))
        $calls.Count | Should -BeGreaterOrEqual 7
        foreach ($c in $calls) {
            $cmd = Get-Command $c.GetCommandName() -Module BitbucketZdu -ErrorAction Stop
            foreach ($p in $c.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                $cmd.Parameters.Keys + [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters |
                    Should -Contain $p.ParameterName -Because "$($cmd.Name) -$($p.ParameterName) appears in the README"
            }
        }
    }
}
