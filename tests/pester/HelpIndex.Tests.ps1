# The command index docs/commands/README.md lists every command page, and the MAML converter skips it.
Describe 'Command index' {
    BeforeAll {
        $root = Resolve-Path (Join-Path $PSScriptRoot '../..')
        $docs = Join-Path $root 'docs/commands'
        $pages = @(Get-ChildItem -LiteralPath $docs -Filter '*-*.md' | ForEach-Object BaseName)
    }
    It 'links every command page' {
        $index = Get-Content -Raw -LiteralPath (Join-Path $docs 'README.md')
        foreach ($p in $pages) { $index | Should -Match ([regex]::Escape("]($p.md)")) }
    }
    It 'is not turned into a command by the help converter' {
        $out = Join-Path ([IO.Path]::GetTempPath()) ("help-" + [guid]::NewGuid() + '.xml')
        try {
            & (Join-Path $root 'tools/ConvertTo-MamlHelp.ps1') -DocsPath $docs -OutputPath $out
            ([xml](Get-Content -Raw $out)).GetElementsByTagName('command:command').Count | Should -Be $pages.Count
        } finally { Remove-Item $out -ErrorAction Ignore }
    }
}
