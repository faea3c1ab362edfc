# Test helpers for the Pester suite: a simulated cluster (bbsim cluster --detach) and its loopback balancer
# (bbsim balancer, HAProxy's runtime API) on free loopback ports, in a per-test folder. The cluster, the ports and the
# sshd folder come from tools/BbsimCluster.psm1, the one PowerShell way to bbsim (shared with the demo tools).

Import-Module (Join-Path $PSScriptRoot '../../tools/BbsimCluster.psm1') -Force

function Get-FreeTcpPort { (Get-FreeLoopbackPort)[0] }

<#
.SYNOPSIS
    Starts a detached simulated cluster under $Root and returns its manifest (nodes[name, port, url, home, installDir], user, password).
#>
function Start-SimCluster {
    param(
        [Parameter(Mandatory)] [string] $Root,
        [int] $Nodes = 2,
        [string] $Version = '8.19.3',
        [string] $Password = 'sim-password',
        # How long a simulated node takes to start (every start, the upgraded one's too).
        [string] $StartDelay = '100ms',
        [string[]] $Extra = @()
    )
    Start-BbsimCluster -Root $Root -Nodes $Nodes -Version $Version -Password $Password -StartDelay $StartDelay -Grace '3s' -Extra $Extra
}

function Stop-SimCluster {
    param([Parameter(Mandatory)] [string] $Root)
    Stop-BbsimCluster -Root $Root
}

<#
.SYNOPSIS
    Starts bbsim's loopback balancer in front of the cluster's nodes (members named like the nodes, backend 'bitbucket');
    returns the process with NoteProperties AdminPort and ListenPort. Stop it with Stop-SimBalancer.
#>
function Start-SimBalancer {
    param([Parameter(Mandatory)] $Manifest)
    $admin = Get-FreeTcpPort
    $listen = Get-FreeTcpPort
    $arguments = @((Get-BbsimPath), 'balancer', '--listen', $listen, '--admin-port', $admin, '--backend', 'bitbucket', '--check-interval-ms', '200')
    foreach ($node in $Manifest.nodes) { $arguments += @('--server', "$($node.name)=127.0.0.1:$($node.port)") }
    $stderr = [IO.Path]::GetTempFileName()
    $process = Start-Process -FilePath 'dotnet' -ArgumentList $arguments -PassThru -RedirectStandardOutput ([IO.Path]::GetTempFileName()) -RedirectStandardError $stderr
    $deadline = [DateTime]::UtcNow.AddSeconds(60)   # dotnet start-up on a loaded 2-core CI machine
    while ($true) {
        $client = [System.Net.Sockets.TcpClient]::new()
        try { $client.Connect('127.0.0.1', $admin); break }
        catch {
            if ([DateTime]::UtcNow -gt $deadline -or $process.HasExited) {
                throw "bbsim balancer did not open its runtime API on port $admin (exited: $($process.HasExited)): $(Get-Content $stderr -Raw)"
            }
        }
        finally { $client.Dispose() }
        Start-Sleep -Milliseconds 100   # polling with a deadline, not synchronisation by sleep
    }
    $process | Add-Member -NotePropertyName AdminPort -NotePropertyValue $admin -PassThru | Add-Member -NotePropertyName ListenPort -NotePropertyValue $listen -PassThru
}

function Stop-SimBalancer {
    param($Process)
    if ($Process -and -not $Process.HasExited) { Stop-Process -Id $Process.Id -Force -ErrorAction SilentlyContinue }
}

<#
.SYNOPSIS
    Writes a cluster profile for the simulated cluster (local node work, Script service, the loopback balancer) with
    the release archive of -TargetVersion built by bbsim dist; returns the profile path.
#>
function New-SimProfile {
    param(
        [Parameter(Mandatory)] $Manifest,
        [Parameter(Mandatory)] [string] $Root,
        [Parameter(Mandatory)] $Balancer,
        [Parameter(Mandatory)] [string] $Path,
        [string] $TargetVersion = '8.19.4',
        [string] $BaseUrl
    )
    $dist = Join-Path $Root 'dist-target'
    Invoke-Bbsim @('dist', '--version', $TargetVersion, '--output', $dist, '--format', 'tar.gz') | Out-Null
    $archive = Join-Path $dist "atlassian-bitbucket-$TargetVersion.tar.gz"
    $sha = (Get-FileHash $archive -Algorithm SHA256).Hash.ToLowerInvariant()
    if (-not $BaseUrl) { $BaseUrl = "http://127.0.0.1:$($Balancer.ListenPort)/" }
    $nodes = foreach ($node in $Manifest.nodes) {
        @"
        @{ Name = '$($node.name)'; Url = '$($node.url)'; Remoting = 'local'; Service = 'Script'; Member = '$($node.name)'
           InstallRoot = '$(Split-Path -Parent $node.installDir)' }
"@
    }
    @"
@{
    Name          = 'sim'
    BaseUrl       = '$BaseUrl'
    TargetVersion = '$TargetVersion'
    Archive       = @{ Path = '$archive'; Sha256 = '$sha' }
    LoadBalancers = @(@{ Name = 'lb'; Kind = 'HAProxy'; Settings = @{ Endpoint = 'tcp://127.0.0.1:$($Balancer.AdminPort)'; Backend = 'bitbucket' } })
    Nodes         = @(
$($nodes -join [Environment]::NewLine)
    )
    MinFreeDiskGB = 0
    JournalPath   = '$(Join-Path $Root 'journal')'
    Timeouts      = @{ DrainSeconds = 5; StopSeconds = 15; OfflineSeconds = 15; StartSeconds = 30; HealthySeconds = 15; StableSeconds = 30 }
}
"@ | Set-Content -LiteralPath $Path -Encoding utf8
    $Path
}

<#
.SYNOPSIS
    Starts a real OpenSSH server on loopback under $Root (own host key pinned in a known_hosts file, key-only login as
    the current user); its folder is written by the same code as tests/BitbucketZdu.TestSupport/SshServer.cs's (bbsim.dll's LoopbackSshd). Returns Port, UserName, KeyFile,
    KnownHostsFile and Process; stop it with Stop-SimSshd.
#>
function Start-SimSshd {
    param([Parameter(Mandatory)] [string] $Root)
    $sshd = @(Get-Command sshd -CommandType Application -ErrorAction SilentlyContinue | ForEach-Object Source) + @('/usr/sbin/sshd') |
        Where-Object { Test-Path $_ } | Select-Object -First 1
    if (-not $sshd -or -not (Get-Command ssh-keygen -ErrorAction SilentlyContinue)) {
        throw 'sshd and ssh-keygen are needed (Debian/Ubuntu: sudo apt-get install openssh-server openssh-client, or sudo bash .ci/install-test-servers.sh).'
    }
    if (-not (Test-Path /run/sshd)) { New-Item -ItemType Directory -Path /run/sshd -Force -ErrorAction SilentlyContinue | Out-Null }
    $folder = New-BbsimSshdFolder -Root $Root -SshKeygen (Get-Command ssh-keygen -CommandType Application | Select-Object -First 1).Source
    $port = $folder.Port
    $process = Start-Process -FilePath $sshd -ArgumentList @('-D', '-e', '-f', $folder.ConfigFile) -PassThru `
        -RedirectStandardError (Join-Path $Root 'sshd.log') -RedirectStandardOutput (Join-Path $Root 'sshd.out')
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while ($true) {
        $client = [System.Net.Sockets.TcpClient]::new()
        try { $client.Connect('127.0.0.1', $port); break }
        catch {
            if ([DateTime]::UtcNow -gt $deadline -or $process.HasExited) { throw "sshd did not listen on 127.0.0.1:${port}: $(Get-Content (Join-Path $Root 'sshd.log') -Raw)" }
        }
        finally { $client.Dispose() }
        Start-Sleep -Milliseconds 100   # polling with a deadline
    }
    [pscustomobject]@{ Port = $port; UserName = $folder.UserName; KeyFile = $folder.KeyFile; KnownHostsFile = $folder.KnownHostsFile; Process = $process }
}

function Stop-SimSshd {
    param($Server)
    if ($Server -and -not $Server.Process.HasExited) { Stop-Process -Id $Server.Process.Id -Force -ErrorAction SilentlyContinue }
}

Export-ModuleMember -Function Get-BbsimPath, Get-FreeTcpPort, Get-FreeLoopbackPort, Invoke-Bbsim, Start-SimCluster, Stop-SimCluster, Start-SimBalancer, Stop-SimBalancer, New-SimProfile, Start-SimSshd, Stop-SimSshd
