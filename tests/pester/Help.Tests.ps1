# Help as users read it offline: every exported cmdlet has real MAML help (not the auto-generated stub), and the
# state-changing cmdlets expose -WhatIf/-Confirm. Behaviour of -WhatIf is asserted in xUnit (WhatIf_sends_nothing).
BeforeDiscovery {
    $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $script:Cmdlets = @($manifest.CmdletsToExport)
    $script:Changing = @('Enable-BbUpgradeMode', 'Disable-BbUpgradeMode', 'Complete-BbRollingUpgrade')
}

BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    # -WhatIf and -Confirm are documented like any parameter (platyPS does so too).
    $script:Common = [System.Management.Automation.PSCmdlet]::CommonParameters
}

Describe 'Help of <_>' -ForEach $Cmdlets {
    BeforeAll {
        $script:Name = $_
        $script:Help = Get-Help $Name -Full
        $script:Command = Get-Command $Name
    }

    It 'has a synopsis of its own' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        # Without MAML, PowerShell shows the syntax line as the synopsis.
        $Help.Synopsis.Trim() | Should -Not -BeLike "$Name *"
        $Help.Synopsis.Trim() | Should -Not -BeLike "*<CommonParameters>*"
    }

    It 'has a description' {
        ($Help.Description | ForEach-Object Text) -join ' ' | Should -Match '\w{3,}'
    }

    It 'has at least two examples with code and remarks' {
        $examples = @($Help.Examples.Example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) {
            $e.Code | Should -Not -BeNullOrEmpty
            ($e.Remarks | ForEach-Object Text) -join '' | Should -Match '\w'
        }
    }

    It 'describes every parameter, and only real ones' {
        $actual = @($Command.Parameters.Keys | Where-Object { $_ -notin $Common }) | Sort-Object
        $documented = @($Help.Parameters.Parameter | ForEach-Object Name) | Sort-Object
        $documented | Should -Be $actual
        foreach ($p in $Help.Parameters.Parameter) {
            ($p.Description | ForEach-Object Text) -join ' ' | Should -Match '\w{3,}' -Because "-$($p.Name) needs a description"
        }
    }

    It 'names its output type in help and metadata' {
        $Command.OutputType | Should -Not -BeNullOrEmpty
        $Help.ReturnValues | Should -Not -BeNullOrEmpty
    }

    It 'answers Get-Help -Parameter for each parameter' {
        foreach ($p in @($Command.Parameters.Keys | Where-Object { $_ -notin $Common })) {
            (Get-Help $Name -Parameter $p).Name | Should -Be $p
        }
    }
}

Describe 'State-changing cmdlet <_>' -ForEach $Changing {
    It 'supports -WhatIf and -Confirm' {
        $command = Get-Command $_
        $command.Parameters.Keys | Should -Contain 'WhatIf'
        $command.Parameters.Keys | Should -Contain 'Confirm'
    }

    It 'checks the connection before anything else, even with -WhatIf' {
        Disconnect-BbCluster
        { & $_ -WhatIf -ErrorAction Stop } | Should -Throw -ErrorId "BbNotConnected,BitbucketZdu.Cmdlets.$($_ -replace '-', '')Command"
    }
}

Describe 'about_BitbucketZdu' {
    It 'is found by Get-Help and covers the flow, the states and the safety rules' {
        $text = Get-Help about_BitbucketZdu | Out-String
        $text | Should -Match 'THE UPGRADE FLOW'
        $text | Should -Match 'READY_TO_RUN_UPGRADE_TASKS'
        $text | Should -Match 'SAFETY RULES'
    }

    It 'finalizing asks for confirmation (ConfirmImpact High)' {
        $attr = (Get-Command Complete-BbRollingUpgrade).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
        $attr.ConfirmImpact | Should -Be 'High'
    }
}
