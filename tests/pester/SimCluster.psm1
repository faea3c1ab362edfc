# Test helpers for the Pester suite: a simulated cluster (bbsim cluster --detach) and its loopback balancer
# (bbsim balancer, HAProxy's runtime API) on free loopback ports, in a per-test folder.

function Get-BbsimPath {
    $root = Join-Path $PSScriptRoot '../../src/BitbucketZdu.Simulator/bin'
    $dll = Get-ChildItem -Path $root -Filter 'bbsim.dll' -Recurse -ErrorAction SilentlyContinue |
        Where-Object { $_.Directory.Name -like 'net*' } | Sort-Object LastWriteTimeUtc -Descending | Select-Object -First 1
    if (-not $dll) { throw "bbsim.dll not found under $root. Build it first: dotnet build src/BitbucketZdu.Simulator (build.ps1 Test builds it)." }
    $dll.FullName
}

function Get-FreeTcpPort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Invoke-Bbsim {
    param([Parameter(Mandatory)] [string[]] $Arguments)
    $output = & dotnet (Get-BbsimPath) @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "bbsim $($Arguments -join ' ') failed with exit code ${LASTEXITCODE}: $($output -join [Environment]::NewLine)" }
    $output
}

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
    $ports = @(1..$Nodes | ForEach-Object { Get-FreeTcpPort })
    Invoke-Bbsim (@('cluster', '--nodes', $Nodes, '--version', $Version, '--root', $Root, '--ports', ($ports -join ','),
            '--user', 'admin', '--password', $Password, '--start-delay', $StartDelay, '--grace', '3s', '--detach') + $Extra) | Out-Null
    Get-Content (Join-Path $Root 'bbsim-cluster.json') -Raw | ConvertFrom-Json
}

function Stop-SimCluster {
    param([Parameter(Mandatory)] [string] $Root)
    if (Test-Path (Join-Path $Root 'bbsim-cluster.json')) { Invoke-Bbsim @('stop', '--root', $Root) | Out-Null }
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
    the current user), as tests/BitbucketZdu.TestSupport/SshServer.cs does. Returns Port, UserName, KeyFile,
    KnownHostsFile and Process; stop it with Stop-SimSshd.
#>
function Start-SimSshd {
    param([Parameter(Mandatory)] [string] $Root)
    $sshd = @(Get-Command sshd -CommandType Application -ErrorAction SilentlyContinue | ForEach-Object Source) + @('/usr/sbin/sshd') |
        Where-Object { Test-Path $_ } | Select-Object -First 1
    if (-not $sshd -or -not (Get-Command ssh-keygen -ErrorAction SilentlyContinue)) {
        throw 'sshd and ssh-keygen are needed (Debian/Ubuntu: sudo apt-get install openssh-server openssh-client, or sudo bash .ci/install-test-servers.sh).'
    }
    New-Item -ItemType Directory -Path $Root -Force | Out-Null
    if (-not (Test-Path /run/sshd)) { New-Item -ItemType Directory -Path /run/sshd -Force -ErrorAction SilentlyContinue | Out-Null }
    $port = Get-FreeTcpPort
    $hostKey = Join-Path $Root 'host_key'; $clientKey = Join-Path $Root 'client_key'
    foreach ($k in $hostKey, $clientKey) {
        & ssh-keygen -q -t ed25519 -N '' -f $k | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "ssh-keygen failed for $k" }
    }
    Copy-Item "$clientKey.pub" (Join-Path $Root 'authorized_keys')
    $pub = (Get-Content "$hostKey.pub" -Raw).Trim().Split(' ')
    Set-Content -Path (Join-Path $Root 'known_hosts') -Value "[127.0.0.1]:$port $($pub[0]) $($pub[1])"
    Set-Content -Path (Join-Path $Root 'sshd_config') -Value @"
Port $port
ListenAddress 127.0.0.1
HostKey $hostKey
PidFile $Root/sshd.pid
AuthorizedKeysFile $Root/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxSessions 50
MaxStartups 50:30:100
"@
    $process = Start-Process -FilePath $sshd -ArgumentList @('-D', '-e', '-f', (Join-Path $Root 'sshd_config')) -PassThru `
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
    [pscustomobject]@{ Port = $port; UserName = [Environment]::UserName; KeyFile = $clientKey; KnownHostsFile = (Join-Path $Root 'known_hosts'); Process = $process }
}

function Stop-SimSshd {
    param($Server)
    if ($Server -and -not $Server.Process.HasExited) { Stop-Process -Id $Server.Process.Id -Force -ErrorAction SilentlyContinue }
}

Export-ModuleMember -Function Get-BbsimPath, Get-FreeTcpPort, Invoke-Bbsim, Start-SimCluster, Stop-SimCluster, Start-SimBalancer, Stop-SimBalancer, New-SimProfile, Start-SimSshd, Stop-SimSshd
