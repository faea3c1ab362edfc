# The upgrade commands as users meet them: profile template, validation with places, -WhatIf safety, views, help.
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-pester-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
}

AfterAll {
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Upgrade commands' {
    It 'writes a template that validates once the checksum is filled in' {
        $archive = Join-Path $Dir 'atlassian-bitbucket-8.19.4.tar.gz'
        Set-Content -Path $archive -Value 'pretend release'
        $sha = (Get-FileHash $archive -Algorithm SHA256).Hash
        $file = New-BbClusterProfile -Path (Join-Path $Dir 'prod.psd1') -ArchivePath $archive -ArchiveSha256 $sha -NodeName bb1, bb2
        $file | Should -BeOfType ([IO.FileInfo])
        $finding = Test-BbClusterProfile -ProfilePath $file.FullName -SkipProbe
        $finding.Check | Should -Be 'ProfileValid'
        Test-BbClusterProfile -ProfilePath $file.FullName -SkipProbe -Quiet | Should -BeTrue
    }

    It 'names the place of each problem in the file' {
        $bare = New-BbClusterProfile -Path (Join-Path $Dir 'bare.psd1')
        $errors = Test-BbClusterProfile -ProfilePath $bare.FullName -SkipProbe | Where-Object Severity -eq 'Error'
        $errors.Place | Should -Contain 'Archive.Sha256'
    }

    It 'refuses a missing profile with a stable ErrorId' {
        { Invoke-BbRollingUpgrade -ProfilePath (Join-Path $Dir 'nope.psd1') -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'ProfileNotFound,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand'
    }

    It 'refuses a -MaxUnavailable the capacity rule forbids before it connects or changes anything' {
        $archive = Join-Path $Dir 'atlassian-bitbucket-8.19.4.tar.gz'
        Set-Content -Path $archive -Value 'pretend release'
        $sha = (Get-FileHash $archive -Algorithm SHA256).Hash
        $two = New-BbClusterProfile -Path (Join-Path $Dir 'two.psd1') -ArchivePath $archive -ArchiveSha256 $sha -NodeName bb1, bb2
        # No credential and no reachable cluster: the refusal comes from the numbers alone.
        { Invoke-BbRollingUpgrade -ProfilePath $two.FullName -MaxUnavailable 0 -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'UpgradeMaxUnavailableInvalid,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand'
        $err = { Invoke-BbRollingUpgrade -ProfilePath $two.FullName -MaxUnavailable 2 -WhatIf -ErrorAction Stop } |
            Should -Throw -ErrorId 'UpgradeCapacityRuleBroken,BitbucketZdu.Cmdlets.InvokeBbRollingUpgradeCommand' -PassThru
        $err.Exception.Message | Should -BeLike '*at least 1*Use -MaxUnavailable 1 or less*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'loads the views of the upgrade types' {
        foreach ($type in 'BitbucketZdu.Core.Upgrade.Report.UpgradeReport', 'BitbucketZdu.Core.Upgrade.Report.NodeUpgradeReport',
            'BitbucketZdu.Core.Upgrade.Plan.UpgradePlan', 'BitbucketZdu.Core.Upgrade.Preflight.PreflightFinding') {
            Get-FormatData -TypeName $type | Should -Not -BeNullOrEmpty -Because "$type needs a default view"
        }
    }

    It 'has ConfirmImpact High on the commands that stop nodes' {
        foreach ($name in 'Invoke-BbRollingUpgrade', 'Invoke-BbNodeUpgrade') {
            $cmd = Get-Command $name
            $cmd.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false).ConfirmImpact | Should -Be 'High'
            $cmd.Parameters.Keys | Should -Contain 'WhatIf'
        }
    }
}
