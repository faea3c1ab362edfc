# The plan of Examples.Tests.ps1 (dot-sourced at discovery and at run time): every example of the built help, which
# are marked not runnable (and why), and the order the runnable ones run in on each simulated cluster.
function Get-ExamplePlan {
    $notRunnable = 'Not runnable on the simulated cluster:'
    $manifest = Import-PowerShellDataFile $env:BITBUCKETZDU_MODULE
    $examples = foreach ($cmdlet in $manifest.CmdletsToExport) {
        $i = 0
        foreach ($e in @((Get-Help $cmdlet -Examples).Examples.Example)) {
            $i++
            $remarks = (@($e.Remarks | ForEach-Object Text) -join ' ').Trim()
            @{
                Key = "$cmdlet#$i"; Cmdlet = $cmdlet; Index = $i; Code = [string] $e.Code
                Title = ($e.Title -replace '^-+\s*|\s*-+$', '')
                Reason = if ($remarks -match [regex]::Escape($notRunnable) + '\s*(.+)$') { $Matches[1] } else { $null }
            }
        }
    }
    # The order per cluster: 'Cmdlet' = all its runnable examples in order, 'Cmdlet#n' = that one.
    $order = [ordered]@{
        main    = @('Connect-BbCluster', 'Disconnect-BbCluster', 'Get-BbClusterStatus', 'Get-BbNode', 'Wait-BbClusterState#2',
            'Enable-BbUpgradeMode', 'Disable-BbUpgradeMode', 'Get-BbLoadBalancerMember', 'New-BbLoadBalancer',
            'Remove-BbNodeFromLoadBalancer', 'Add-BbNodeToLoadBalancer', 'New-BbClusterProfile', 'Test-BbClusterProfile',
            'Resume-BbUpgradeTask')
        nodes   = @('Get-BbNodeInstallation', 'Copy-BbDistribution', 'Install-BbNodeVersion', 'Stop-BbNode#1', 'Start-BbNode#1',
            'Undo-BbNodeUpgrade#1', 'Wait-BbNodeState#1', 'Wait-BbNodeState#2', 'Stop-BbNode#2', 'Start-BbNode#2', 'Undo-BbNodeUpgrade#2')
        upgrade = @('Invoke-BbRollingUpgrade', 'Get-BbRollingUpgrade', 'Invoke-BbNodeUpgrade', 'Wait-BbClusterState#1', 'Complete-BbRollingUpgrade#1',
            'Complete-BbRollingUpgrade#2')
    }
    $runnable = @($examples | Where-Object { -not $_.Reason })
    $runs = @(foreach ($cluster in $order.Keys) {
            foreach ($entry in $order[$cluster]) {
                foreach ($e in $runnable | Where-Object { $_.Key -eq $entry -or $_.Cmdlet -eq $entry }) {
                    $run = $e.Clone()
                    $run.Cluster = $cluster
                    $run
                }
            }
        })
    @{
        Cmdlets   = @($manifest.CmdletsToExport)
        Runs      = $runs
        Clusters  = @($order.Keys)
        Unplanned = @($runnable | Where-Object { $_.Key -notin $runs.Key } | ForEach-Object { $_.Key })
        Skipped   = @($examples | Where-Object { $_.Reason })
    }
}
