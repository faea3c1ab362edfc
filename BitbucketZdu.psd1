@{
    # The module manifest. build.ps1 copies it into out/BitbucketZdu/<version>/ beside the assemblies it names.
    RootModule             = 'BitbucketZdu.dll'
    ModuleVersion          = '0.1.0'
    GUID                   = '5d0f3a6e-6b8e-4d0c-9a55-2f3c2a7e91b4'
    Author                 = 'BitbucketZdu contributors'
    CompanyName            = 'BitbucketZdu'
    Copyright              = '(c) BitbucketZdu contributors. MIT licence.'
    Description            = 'Zero-downtime rolling upgrades of Bitbucket Data Center clusters through the /rest/zdu API: upgrade mode, load-balancer draining (HAProxy, NGINX, Apache, Azure Application Gateway), node work over PowerShell remoting or SSH, journaled and resumable.'
    # Windows PowerShell 5.1, or PowerShell 7.4+ (.NET 8). A manifest cannot say "5.1 or 7.4+": the module refuses
    # PowerShell 7.0-7.3 at import with a clear error (Loading/ModuleInitializer.cs).
    PowerShellVersion      = '5.1'
    CompatiblePSEditions   = @('Desktop', 'Core')
    DotNetFrameworkVersion = '4.7.2'
    FormatsToProcess       = @('BitbucketZdu.Format.ps1xml', 'LoadBalancers.Format.ps1xml', 'Nodes.Format.ps1xml', 'Upgrade.Format.ps1xml')
    CmdletsToExport        = @(
        'Connect-BbCluster'
        'Disconnect-BbCluster'
        'Get-BbClusterStatus'
        'Get-BbNode'
        'Enable-BbUpgradeMode'
        'Disable-BbUpgradeMode'
        'Complete-BbRollingUpgrade'
        'Resume-BbUpgradeTask'
        'Wait-BbClusterState'
        'Wait-BbNodeState'
        'New-BbLoadBalancer'
        'Get-BbLoadBalancerMember'
        'Remove-BbNodeFromLoadBalancer'
        'Add-BbNodeToLoadBalancer'
        'New-BbClusterProfile'
        'Test-BbClusterProfile'
        'Invoke-BbNodeUpgrade'
        'Invoke-BbRollingUpgrade'
        'Get-BbRollingUpgrade'
        'Get-BbNodeInstallation'
        'Stop-BbNode'
        'Start-BbNode'
        'Copy-BbDistribution'
        'Install-BbNodeVersion'
        'Undo-BbNodeUpgrade'
    )
    FunctionsToExport      = @()
    AliasesToExport        = @()
    VariablesToExport      = @()
    PrivateData            = @{
        PSData = @{
            # Gallery metadata; tools/New-ModuleNupkg.ps1 turns it into the nuspec (PSModule, PSEdition_*, PSCmdlet_*
            # and PSCommand_* tags are added from CompatiblePSEditions and CmdletsToExport).
            Tags                     = @('Bitbucket', 'Atlassian', 'DataCenter', 'Upgrade', 'ZeroDowntime', 'RollingUpgrade', 'HAProxy', 'NGINX', 'Apache', 'ApplicationGateway', 'AzureAutomation', 'DevOps', 'PSEdition_Desktop', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            LicenseUri               = 'https://opensource.org/licenses/MIT'
            ProjectUri               = 'https://github.com/bitbucketzdu/BitbucketZdu'
            RequireLicenseAcceptance = $false
            ReleaseNotes             = @'
0.1.0 - first release.
- Rolling-upgrade API client and cluster cmdlets: Connect-BbCluster, Get-BbClusterStatus, Get-BbNode, Enable-/Disable-BbUpgradeMode, Wait-BbClusterState, Wait-BbNodeState, Complete-BbRollingUpgrade.
- Orchestrated upgrades: New-/Test-BbClusterProfile, Invoke-BbNodeUpgrade, Invoke-BbRollingUpgrade; journaled, resumable, rolled back node by node.
- Runs in Windows PowerShell 5.1 and PowerShell 7.4+, Azure Automation runbooks (5.1 and 7.4 runtimes) and scheduled tasks.
Changed since the preview builds:
- The node cmdlets (Get-BbNodeInstallation, Copy-BbDistribution, Install-BbNodeVersion, Stop-BbNode, Start-BbNode, Undo-BbNodeUpgrade) take the WinRM account as -RemotingCredential (was -Credential), as Invoke-BbRollingUpgrade does; -Credential is the Bitbucket administrator wherever it appears and -Token a Bitbucket token; New-BbLoadBalancer takes the load balancer's own account as -ApiCredential (was -Credential) and an Azure bearer token as -AzureToken (was -Token).
- Node names bind as -Name or -NodeName, node ids as -Id or -NodeId, on every cmdlet that takes one; Invoke-BbNodeUpgrade's -Node alias is gone.
- -State of Wait-BbClusterState, Wait-BbNodeState and Get-BbNode takes state names (String[]); Tab shows what each state means, and Unknown is refused as a wait target (WaitBbClusterStateUnknownState, WaitBbNodeStateUnknownState).
- New-BbClusterProfile -FromConnection (or Get-BbNode | New-BbClusterProfile) writes the cluster's own nodes.
'@
        }
    }
}
