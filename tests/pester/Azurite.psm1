# Test helpers for the Pester suite: Azurite's blob service (the Azure Storage emulator, installed from npm by
# tools/Install-Azurite.ps1 into the ignored .tools-cache) on a free loopback port, and read-only looks at a blob
# journal through the module's own store. Import the module (BitbucketZdu) first: these use its types.

$script:Account = 'devstoreaccount1'
# The emulator's well-known key (public, documented by Microsoft): not a secret.
$script:AccountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

<#
.SYNOPSIS
    Starts azurite-blob on a free loopback port with its data under -Root; returns Process, Port, Account, Key (SecureString)
    and Credential (PSCredential: account + key). Stop it with Stop-Azurite.
#>
function Start-Azurite {
    param([Parameter(Mandatory)] [string] $Root)
    $bin = & (Join-Path $PSScriptRoot '../../tools/Install-Azurite.ps1') | Select-Object -Last 1
    New-Item -ItemType Directory -Path $Root -Force | Out-Null
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
    $process = Start-Process -FilePath $bin -PassThru -ArgumentList @('--blobHost', '127.0.0.1', '--blobPort', $port, '--location', $Root,
        '--skipApiVersionCheck', '--loose') -RedirectStandardOutput (Join-Path $Root 'azurite.out') -RedirectStandardError (Join-Path $Root 'azurite.err')
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while ($true) {
        $client = [System.Net.Sockets.TcpClient]::new()
        try { $client.Connect('127.0.0.1', $port); break }
        catch {
            if ([DateTime]::UtcNow -gt $deadline -or $process.HasExited) {
                throw "azurite-blob did not listen on 127.0.0.1:$port (exited: $($process.HasExited)): $(Get-Content (Join-Path $Root 'azurite.err') -Raw)"
            }
        }
        finally { $client.Dispose() }
        Start-Sleep -Milliseconds 100   # polling with a deadline, not synchronisation by sleep
    }
    $key = ConvertTo-SecureString $script:AccountKey -AsPlainText -Force
    [pscustomobject]@{
        Process    = $process
        Port       = $port
        Account    = $script:Account
        Key        = $key
        Credential = [pscredential]::new($script:Account, $key)
    }
}

function Stop-Azurite {
    param($Azurite)
    if ($Azurite -and -not $Azurite.Process.HasExited) { $Azurite.Process.Kill($true) }
}

function New-JournalStore([string] $ContainerUri) {
    [BitbucketZdu.Core.Upgrade.Journal.AzureBlobJournalStore]::new([uri] $ContainerUri,
        [BitbucketZdu.Core.Upgrade.Journal.AzureStorageCredential]::SharedKey($script:Account, (ConvertTo-SecureString $script:AccountKey -AsPlainText -Force)), $null, $null)
}

<#
.SYNOPSIS
    Creates a container in Azurite (the one-time set-up an admin does with New-AzStorageContainer); returns its URI.
#>
function New-AzuriteContainer {
    param([Parameter(Mandatory)] $Azurite, [Parameter(Mandatory)] [string] $Name)
    $uri = "http://127.0.0.1:$($Azurite.Port)/$($Azurite.Account)/$Name"
    $store = New-JournalStore $uri
    try { $null = $store.CreateContainerIfMissingAsync([Threading.CancellationToken]::None).GetAwaiter().GetResult() } finally { $store.Dispose() }
    $uri
}

<#
.SYNOPSIS
    The entries of a cluster's journal blob (read only).
#>
function Get-BlobJournal {
    param([Parameter(Mandatory)] [string] $ContainerUri, [string] $Cluster = 'sim')
    $store = New-JournalStore $ContainerUri
    try { @($store.ReadAsync($Cluster, [Threading.CancellationToken]::None).GetAwaiter().GetResult()) } finally { $store.Dispose() }
}

<#
.SYNOPSIS
    $true when no run holds the lease of the cluster's journal blob (preflight's probe: takes a short lease and releases it).
#>
function Test-BlobJournalFree {
    param([Parameter(Mandatory)] [string] $ContainerUri, [string] $Cluster = 'sim')
    $store = New-JournalStore $ContainerUri
    try {
        $null = $store.ProbeAsync($Cluster, [Threading.CancellationToken]::None).GetAwaiter().GetResult()
        $true
    }
    catch {
        if ($_.Exception.GetBaseException().ErrorId -eq 'JournalLocked') { $false } else { throw }
    }
    finally { $store.Dispose() }
}

Export-ModuleMember -Function Start-Azurite, Stop-Azurite, New-AzuriteContainer, Get-BlobJournal, Test-BlobJournalFree
