# One meaning per parameter name across the exported cmdlets, as users meet them (Get-Command, Get-Help): a name that
# appears on several cmdlets has the same type and the same aliases everywhere, an alias that is another cmdlet's
# parameter name means that parameter, and the names with a fixed meaning say so in their help. No cluster; seconds.
BeforeDiscovery {
    $script:Cmdlets = @((Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport)
}

BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    $common = @([System.Management.Automation.PSCmdlet]::CommonParameters) + @([System.Management.Automation.PSCmdlet]::OptionalCommonParameters)

    # The type a value has, without [] and Nullable: -Id 'a' and -Id 'a', 'b' take the same thing.
    function script:ElementType([type] $t) {
        if ($t.IsArray) { $t = $t.GetElementType() }
        $inner = [Nullable]::GetUnderlyingType($t)
        if ($inner) { $inner } else { $t }
    }

    # -Name means the name of what the cmdlet's noun (or its completer) names: a node, a load-balancer member, a profile.
    # Its meaning key carries the completer, or else the noun; every other name is its own key.
    function script:MeaningKey($command, $p) {
        if ($p.Name -ne 'Name') { return $p.Name }
        $completer = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentCompleterAttribute] } | Select-Object -First 1
        if ($completer) { "Name/$($completer.Type.Name)" } else { "Name/$($command.Noun)" }
    }

    $script:Parameters = @(foreach ($name in (Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE).CmdletsToExport) {
            $command = Get-Command $name
            foreach ($p in $command.Parameters.Values) {
                if ($common -contains $p.Name) { continue }
                [pscustomobject]@{
                    Cmdlet  = $name
                    Name    = $p.Name
                    Key     = MeaningKey $command $p
                    Type    = (ElementType $p.ParameterType).FullName
                    Aliases = (@($p.Aliases) | Sort-Object) -join ', '
                    AliasList = @($p.Aliases)
                }
            }
        })

    # Names whose meaning is fixed module-wide: the help of every cmdlet that has one must say it.
    $script:Meanings = @{
        Credential         = @{ Match = 'Bitbucket'; What = 'the Bitbucket administrator' }
        RemotingCredential = @{ Match = 'WinRM'; What = 'the account for PowerShell sessions over WinRM to the nodes' }
        Token              = @{ Match = 'Bitbucket'; What = 'a Bitbucket HTTP access token' }
    }
    # Known exceptions, each with the reason; the test fails when one is no longer needed.
    $script:Exceptions = @{
    }
}

Describe 'Parameters across cmdlets' {
    It 'gives a name that several cmdlets have one type everywhere' {
        $bad = foreach ($g in $Parameters | Group-Object Key | Where-Object Count -GT 1) {
            $types = @($g.Group | Group-Object Type)
            if ($types.Count -gt 1) { "-$($g.Group[0].Name): " + (($types | ForEach-Object { "$($_.Name) on $(($_.Group.Cmdlet) -join ', ')" }) -join '; ') }
        }
        $bad | Should -BeNullOrEmpty
    }

    It 'gives a name that several cmdlets have the same aliases everywhere' {
        $bad = foreach ($g in $Parameters | Group-Object Key | Where-Object Count -GT 1) {
            $sets = @($g.Group | Group-Object Aliases)
            if ($sets.Count -gt 1) {
                "-$($g.Group[0].Name): " + (($sets | ForEach-Object { "aliases [$($_.Name)] on $(($_.Group.Cmdlet) -join ', ')" }) -join '; ')
            }
        }
        $bad | Should -BeNullOrEmpty
    }

    It 'uses an alias that is a parameter elsewhere only for the same thing (same type)' {
        $bad = foreach ($p in $Parameters | Where-Object { $_.AliasList.Count -gt 0 }) {
            foreach ($alias in $p.AliasList) {
                foreach ($other in $Parameters | Where-Object { $_.Name -eq $alias -and $_.Type -ne $p.Type }) {
                    "alias -$alias of $($p.Cmdlet) -$($p.Name) ($($p.Type)) is $($other.Cmdlet) -$($other.Name) ($($other.Type))"
                }
            }
        }
        $bad | Should -BeNullOrEmpty
    }

    It 'lets a node name be given as -NodeName and a node id as -NodeId wherever a cmdlet takes one' {
        # A node-name parameter completes node names (NodeCompleter); the id ones are named *Id.
        $nodeParameters = foreach ($name in $Parameters.Cmdlet | Sort-Object -Unique) {
            foreach ($p in (Get-Command $name).Parameters.Values) {
                if ($p.Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentCompleterAttribute] -and $_.Type.Name -eq 'NodeCompleter' }) {
                    [pscustomobject]@{ Cmdlet = $name; Name = $p.Name; Names = @($p.Name) + @($p.Aliases) }
                }
            }
        }
        $nodeParameters | Should -Not -BeNullOrEmpty
        $bad = foreach ($p in $nodeParameters) {
            $expected = if ($p.Name -like '*Id') { 'NodeId' } else { 'NodeName' }
            if ($p.Names -notcontains $expected) { "$($p.Cmdlet) -$($p.Name) has no -$expected" }
        }
        $bad | Should -BeNullOrEmpty
    }

    It 'documents -<_> with its one meaning on every cmdlet that has it' -ForEach @('Credential', 'RemotingCredential', 'Token') {
        $meaning = $Meanings[$_]
        $owners = @($Parameters | Where-Object Name -EQ $_)
        $owners | Should -Not -BeNullOrEmpty
        $bad = foreach ($o in $owners) {
            $key = "$($o.Cmdlet) -$_"
            $text = ((Get-Help $o.Cmdlet -Parameter $_).Description | ForEach-Object Text) -join ' '
            $says = $text -match $meaning.Match
            if ($Exceptions.ContainsKey($key)) {
                if ($says) { "$key is listed as an exception but now means $($meaning.What): drop the exception" }
                continue
            }
            if (-not $says) { "$key should be $($meaning.What) (its help says: $text)" }
        }
        $bad | Should -BeNullOrEmpty
    }

    It 'has no node cmdlet that calls the node account -Credential' {
        # The node cmdlets (Stop-BbNode, Start-BbNode, Copy-BbDistribution, ...) reach nodes over -HostName/-ComputerName.
        $nodeCmdlets = @($Parameters | Where-Object Name -EQ 'ComputerName' | ForEach-Object Cmdlet)
        $nodeCmdlets.Count | Should -BeGreaterThan 3
        foreach ($c in $nodeCmdlets) {
            (Get-Command $c).Parameters.Keys | Should -Not -Contain 'Credential' -Because "$c takes the node account as -RemotingCredential"
            (Get-Command $c).Parameters.Keys | Should -Contain 'RemotingCredential'
        }
    }
}
