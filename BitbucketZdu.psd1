@{
    # The module manifest. build.ps1 copies it into out/BitbucketZdu/<version>/ beside the assemblies it names.
    RootModule             = 'BitbucketZdu.dll'
    ModuleVersion          = '0.1.0'
    GUID                   = '5d0f3a6e-6b8e-4d0c-9a55-2f3c2a7e91b4'
    Author                 = 'BitbucketZdu contributors'
    CompanyName            = 'BitbucketZdu'
    Copyright              = '(c) BitbucketZdu contributors. MIT licence.'
    Description            = 'Zero-downtime rolling upgrades of Bitbucket Data Center clusters through the /rest/zdu API: upgrade mode, load-balancer draining (HAProxy, NGINX, Apache, Azure Application Gateway), node work over PowerShell remoting or SSH, journaled and resumable.'
    PowerShellVersion      = '5.1'
    CompatiblePSEditions   = @('Desktop', 'Core')
    DotNetFrameworkVersion = '4.7.2'
    FormatsToProcess       = @('BitbucketZdu.Format.ps1xml', 'Nodes.Format.ps1xml')
    CmdletsToExport        = @(
        'Connect-BbCluster'
        'Disconnect-BbCluster'
        'Get-BbClusterStatus'
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
            Tags         = @('Bitbucket', 'Atlassian', 'DataCenter', 'Upgrade', 'ZeroDowntime', 'RollingUpgrade', 'HAProxy', 'NGINX', 'Apache', 'AzureAutomation', 'PSEdition_Desktop', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://github.com/bitbucketzdu/BitbucketZdu'
            ReleaseNotes = 'First release: rolling-upgrade API client and cluster cmdlets.'
        }
    }
}
