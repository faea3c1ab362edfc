# Every type a cmdlet declares as output has a default view, so what users see first is a readable table or list.
BeforeDiscovery {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $script:OutputTypes = @($manifest.CmdletsToExport | ForEach-Object { (Get-Command $_).OutputType } |
            Where-Object { $_.Type -and -not $_.Type.IsPrimitive -and $_.Type -notin @([void], [string]) } |
            ForEach-Object { $_.Type.FullName } | Sort-Object -Unique)
}

BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
}

Describe 'Views' {
    It 'finds output types to check' {
        $OutputTypes.Count | Should -BeGreaterThan 8
    }

    It 'has a default view for <_>' -ForEach $OutputTypes {
        $data = @(Get-FormatData -TypeName $_)
        $data | Should -Not -BeNullOrEmpty -Because "$_ is the output of an exported cmdlet"
        $data[0].FormatViewDefinition.Count | Should -BeGreaterThan 0
    }
}
