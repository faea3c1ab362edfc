# Stand-ins for Azure Automation's internal cmdlets, to rehearse the runbook on an admin host or in tests:
#   Import-Module ./AutomationStubs.psm1; Set-AutomationStub -Credential (Get-Credential) -Variable @{ BitbucketZduProfile = (Get-Content prod.psd1 -Raw) }
$script:Credentials = @{}
$script:Variables = @{}

function Set-AutomationStub {
    param([hashtable] $Credential = @{}, [hashtable] $Variable = @{})
    foreach ($k in $Credential.Keys) { $script:Credentials[$k] = $Credential[$k] }
    foreach ($k in $Variable.Keys) { $script:Variables[$k] = $Variable[$k] }
}

function Get-AutomationPSCredential {
    param([Parameter(Mandatory)] [string] $Name)
    if (-not $script:Credentials.ContainsKey($Name)) { throw "Credential asset '$Name' not found." }
    $script:Credentials[$Name]
}

function Get-AutomationVariable {
    param([Parameter(Mandatory)] [string] $Name)
    if (-not $script:Variables.ContainsKey($Name)) { throw "Variable asset '$Name' not found." }
    $script:Variables[$Name]
}

Export-ModuleMember -Function Set-AutomationStub, Get-AutomationPSCredential, Get-AutomationVariable
