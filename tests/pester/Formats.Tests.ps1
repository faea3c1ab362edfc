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

Describe 'Rolling upgrade status view' {
    It 'shows a node the API lists without a version as "API OFFLINE", not "API OFFLINE on "' {
        $status = [BitbucketZdu.Core.Upgrade.Journal.RollingUpgradeStatus]::new()
        $status.Cluster = 'prod'
        $offline = [BitbucketZdu.Core.Upgrade.Journal.RunNodeStatus]@{ Order = 3; Name = 'node-3'; Progress = 'Begun'; LastStep = 'install'; ApiState = 'OFFLINE'; Rotation = 'OutOfRotation' }
        $active = [BitbucketZdu.Core.Upgrade.Journal.RunNodeStatus]@{ Order = 1; Name = 'node-1'; Progress = 'Done'; LastStep = 'put-back'; ApiState = 'ACTIVE'; Version = '8.19.4'; Rotation = 'InRotation' }
        $status.Nodes.Add($active); $status.Nodes.Add($offline)
        $screen = $status | Format-List | Out-String -Width 200
        $screen | Should -Match '3\. node-3: Begun at install, API OFFLINE, OutOfRotation'
        $screen | Should -Match '1\. node-1: Done at put-back, API ACTIVE on 8\.19\.4, InRotation'
    }
}
