# A failure message with ANSI colour codes must not hide the suite's counts (issue 17): the JUnit writer rejects 0x1B.
Describe 'Invoke-PesterSuite with a colour-coded failure' {
    It 'still writes every Pester count' {
        $dir = Join-Path ([IO.Path]::GetTempPath()) ("pfx-" + [guid]::NewGuid())
        New-Item -ItemType Directory -Path $dir | Out-Null
        try {
            Copy-Item (Join-Path $PSScriptRoot 'Invoke-PesterSuite.ps1') $dir
            Set-Content (Join-Path $dir 'Fixture.Tests.ps1') 'Describe "f" { It "ok" { 1 | Should -Be 1 }; It "bad" { throw "`e[31mred`e[0m and `e[1;33mbold`e[0m`a" } }'
            $counts = Join-Path $dir 'c.json'
            & dotnet (Join-Path $PSHOME 'pwsh.dll') -NoProfile -File (Join-Path $dir 'Invoke-PesterSuite.ps1') -ModulePath $dir `
                -PesterPath (Get-Module Pester).Path -CountsPath $counts -ResultPath (Join-Path $dir 'r.xml') *> $null
            $LASTEXITCODE | Should -Not -Be 0
            $c = Get-Content $counts -Raw | ConvertFrom-Json
            $c.Passed | Should -Be 1
            $c.Failed | Should -Be 1
            # The JUnit XML is written too, with the message minus its escape sequences, and the same counts.
            $xmlPath = Join-Path $dir 'r.xml'
            Test-Path $xmlPath | Should -BeTrue -Because 'the report writer must not fail on colour codes'
            $raw = Get-Content $xmlPath -Raw
            $raw.Contains([string][char]0x1B) | Should -BeFalse
            $xml = [xml]$raw
            $xml.testsuites.tests | Should -Be 2
            $xml.testsuites.failures | Should -Be 1
            $failure = $xml.SelectSingleNode('//testcase/failure')
            $failure.message | Should -Match 'red'
            $failure.message | Should -Not -Match '\[31m'
        } finally { Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue }
    }
}
