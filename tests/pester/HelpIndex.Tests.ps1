# The command index docs/commands/README.md lists every command page and every exported cmdlet, grouped by task, and
# the MAML converter skips it; the README's first screen tours real use and links the walk-throughs, the recipes and
# the index; every relative link in these files and in the pages' RELATED LINKS points at a file that exists.
# Text only (the manifest and docs in the repository; no built module needed): seconds.
BeforeAll {
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:Docs = Join-Path $Root 'docs/commands'
    $script:Pages = @(Get-ChildItem -LiteralPath $Docs -Filter '*-*.md' | ForEach-Object BaseName)
    $script:Exported = @((Import-PowerShellDataFile (Join-Path $Root 'BitbucketZdu.psd1')).CmdletsToExport)

    function Get-MarkdownLink([string] $Path) {
        # [text](target) outside fenced code blocks: @{ Line; Text; Target }.
        $inFence = $false; $n = 0
        foreach ($line in Get-Content -LiteralPath $Path) {
            $n++
            if ($line -match '^\s*```') { $inFence = -not $inFence; continue }
            if ($inFence) { continue }
            foreach ($m in [regex]::Matches(($line -replace '`[^`]*`', ''), '(?<!!)\[([^\]]+)\]\(([^)]*)\)')) {
                [pscustomobject]@{ Line = $n; Text = $m.Groups[1].Value; Target = $m.Groups[2].Value }
            }
        }
    }
    function Get-BrokenLink([string] $Path) {
        # Relative targets (anchors dropped) that name no file or folder next to $Path; an empty target is broken too.
        foreach ($l in (Get-MarkdownLink $Path)) {
            if ($l.Target -match '^(https?|mailto):') { continue }
            $file = ($l.Target -split '#', 2)[0]
            if ($l.Target.StartsWith('#')) { continue }
            if (-not $file -or -not (Test-Path -LiteralPath (Join-Path (Split-Path -Parent $Path) $file))) {
                "$(Split-Path -Leaf $Path):$($l.Line): [$($l.Text)]($($l.Target))"
            }
        }
    }
}

Describe 'Command index' {
    BeforeAll {
        $script:IndexPath = Join-Path $Docs 'README.md'
        $script:Index = Get-Content -Raw -LiteralPath $IndexPath
    }
    It 'links every command page' {
        foreach ($p in $Pages) { $Index | Should -Match ([regex]::Escape("]($p.md)")) }
    }
    It 'lists every exported cmdlet once, on a line of its own under a task heading' {
        $lines = @(Get-Content -LiteralPath $IndexPath)
        foreach ($c in $Exported) {
            $hits = @(for ($i = 0; $i -lt $lines.Count; $i++) { if ($lines[$i] -match "^- \[$c\]\($c\.md\): \S") { $i } })
            $hits.Count | Should -Be 1 -Because "$c needs exactly one '- [$c]($c.md): what it is for' line"
            $heading = @($lines[0..$hits[0]] | Where-Object { $_ -match '^## ' })
            $heading.Count | Should -BeGreaterThan 0 -Because "$c is listed under a task (## heading)"
        }
        @($lines | Where-Object { $_ -match '^## ' }).Count | Should -BeGreaterOrEqual 4
    }
    It 'has no link whose target is missing' {
        @(Get-BrokenLink $IndexPath) | Should -BeNullOrEmpty
    }
    It 'is not turned into a command by the help converter' {
        $out = Join-Path ([IO.Path]::GetTempPath()) ("help-" + [guid]::NewGuid() + '.xml')
        try {
            & (Join-Path $Root 'tools/ConvertTo-MamlHelp.ps1') -DocsPath $Docs -OutputPath $out
            ([xml](Get-Content -Raw $out)).GetElementsByTagName('command:command').Count | Should -Be $Pages.Count
        } finally { Remove-Item $out -ErrorAction Ignore }
    }
}

Describe 'RELATED LINKS of <_>.md' -ForEach @(Get-ChildItem -LiteralPath (Join-Path $PSScriptRoot '../../docs/commands') -Filter '*-*.md' | ForEach-Object BaseName) {
    BeforeAll {
        $script:Page = Join-Path $Docs "$_.md"
        $text = Get-Content -Raw -LiteralPath $Page
        $script:Section = @(($text -split '(?m)^## RELATED LINKS\s*$', 2)[1] -split '\r?\n' | Where-Object { $_.Trim() })
    }
    It 'is a list of markdown links, one a line, none empty' {
        $Section.Count | Should -BeGreaterThan 0
        foreach ($line in $Section) { $line | Should -Match '^\[[^\]]+\]\([^)\s]+\)$' }
    }
    It 'links commands by their page, and every relative target exists' {
        foreach ($line in $Section) {
            if ($line -match '^\[([\w]+-[\w]+)\]\(([^)]*)\)$') { $Matches[2] | Should -Be "$($Matches[1]).md" }
        }
        @(Get-BrokenLink $Page) | Should -BeNullOrEmpty
    }
}

Describe 'README' {
    BeforeAll {
        $script:ReadmePath = Join-Path $Root 'README.md'
        $script:ReadmeLines = @(Get-Content -LiteralPath $ReadmePath)
    }
    It 'has no relative link whose target is missing' {
        @(Get-BrokenLink $ReadmePath) | Should -BeNullOrEmpty
    }
    It 'links the command index, every walk-through and the recipes on its first screen' {
        $first = @(Get-MarkdownLink $ReadmePath | Where-Object Line -LE 40 | ForEach-Object Target)
        $first | Should -Contain 'docs/commands/README.md'
        $first | Should -Contain 'docs/recipes/'
        foreach ($w in Get-ChildItem -LiteralPath (Join-Path $Root 'docs') -Filter 'walkthrough-*.md') {
            $first | Should -Contain "docs/$($w.Name)"
        }
    }
    It 'opens with a tour of real use: connect, status, the profile, -WhatIf, the upgrade, its status, resume' {
        $start = [array]::IndexOf($ReadmeLines, '```powershell')
        $start | Should -BeGreaterThan 0
        $start | Should -BeLessThan 15
        $end = $start + 1; while ($ReadmeLines[$end] -ne '```') { $end++ }
        $tour = $ReadmeLines[($start + 1)..($end - 1)] -join "`n"
        foreach ($step in 'Connect-BbCluster ', 'Get-BbClusterStatus', 'Test-BbClusterProfile ', 'Invoke-BbRollingUpgrade .*-WhatIf',
            'Invoke-BbRollingUpgrade .*-Confirm:\$false', 'Get-BbRollingUpgrade ', 'Invoke-BbRollingUpgrade .*-Resume') {
            $tour | Should -Match $step
        }
    }
}
