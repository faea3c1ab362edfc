# The module as users meet it: import, exported commands, help, -WhatIf.
BeforeAll {
    $script:ModulePath = $env:BITBUCKETZDU_MODULE
    Import-Module $ModulePath -Force
    $script:Manifest = Import-PowerShellDataFile $ModulePath
}

Describe 'BitbucketZdu module' {
    It 'imports quickly and exports exactly the manifest''s cmdlets' {
        $elapsed = Measure-Command { Import-Module $ModulePath -Force }
        $elapsed.TotalSeconds | Should -BeLessThan 5
        $exported = (Get-Module BitbucketZdu).ExportedCmdlets.Keys | Sort-Object
        $exported | Should -Be ($Manifest.CmdletsToExport | Sort-Object)
    }

    It 'uses approved verbs and the Bb prefix for <_>' -ForEach @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport) {
        $verb, $noun = $_ -split '-', 2
        (Get-Verb -Verb $verb) | Should -Not -BeNullOrEmpty
        $noun | Should -BeLike 'Bb*'
    }

    It 'declares an output type on <_>' -ForEach @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport) {
        (Get-Command $_).OutputType | Should -Not -BeNullOrEmpty
    }

    It 'refuses a non-http URL before sending anything' {
        $cred = [pscredential]::new('admin', (ConvertTo-SecureString 'x' -AsPlainText -Force))
        { Connect-BbCluster -Uri 'ftp://example.invalid/' -Credential $cred -ErrorAction Stop } |
            Should -Throw -ErrorId 'ConnectBbClusterInvalidUri,BitbucketZdu.Cmdlets.ConnectBbClusterCommand'
    }

    It 'says how to connect when there is no connection' {
        Disconnect-BbCluster
        { Get-BbClusterStatus -ErrorAction Stop } | Should -Throw -ErrorId 'BbNotConnected,BitbucketZdu.Cmdlets.GetBbClusterStatusCommand'
    }
}
