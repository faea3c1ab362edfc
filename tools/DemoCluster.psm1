<#
.SYNOPSIS
    Set-up shared by the demo (tools/Start-Demo.ps1) and the benchmarks (bench/Invoke-Benchmarks.ps1): a simulated
    cluster on free loopback ports, the target release archive, a load balancer in front (real HAProxy when installed,
    else the simulator's loopback balancer), a cluster profile for it, steady user traffic, and tear-down.

    Nothing here is a test: these functions start real processes and leave them to Stop-DemoEnvironment.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$script:RepoRoot = Split-Path $PSScriptRoot -Parent
# bbsim itself (its path, running it, free ports, a detached cluster): the one PowerShell way, shared with the Pester suite.
Import-Module (Join-Path $PSScriptRoot 'BbsimCluster.psm1') -Force

function Resolve-BuiltModulePath {
    <# The built module's manifest: $ModulePath when given, else out/BitbucketZdu/<version>/BitbucketZdu.psd1; fails when missing. #>
    [OutputType([string])]
    param([string] $ModulePath)
    if (-not $ModulePath) {
        $version = (Import-PowerShellDataFile (Join-Path $script:RepoRoot 'BitbucketZdu.psd1')).ModuleVersion
        $ModulePath = Join-Path $script:RepoRoot "out/BitbucketZdu/$version/BitbucketZdu.psd1"
    }
    if (-not (Test-Path $ModulePath)) { throw "The module is not built at '$ModulePath'. Build it: dotnet pwsh ./build.ps1 Build" }
    $ModulePath
}

function New-DemoPassword {
    $bytes = [byte[]]::new(12)
    [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
    [Convert]::ToBase64String($bytes).Replace('+', 'x').Replace('/', 'y').TrimEnd('=')
}

function New-DemoEnvironment {
    <#
    .SYNOPSIS
        The object every other function takes and fills in (cluster, archive, balancer, profile, traffic). Create it
        first and pass it to Stop-DemoEnvironment in a finally block: whatever was started by then is stopped.
    #>
    param(
        [Parameter(Mandatory)] [string] $Bbsim,
        [Parameter(Mandatory)] [string] $Root,
        [string] $Version = '8.19.3',
        [string] $TargetVersion = '8.19.4'
    )
    New-Item -ItemType Directory -Path $Root -Force | Out-Null
    [pscustomobject]@{
        Root = $Root; Bbsim = $Bbsim; Version = $Version; TargetVersion = $TargetVersion
        User = 'admin'; Password = (New-DemoPassword); Nodes = @(); Archive = $null; Sha256 = $null
        Balancer = $null; Traffic = $null; ProfilePath = $null
        # Set by Start-DemoCluster -ContextPath / -Https: the nodes' server.context-path and the demo CA's files.
        ContextPath = ''; Tls = $null
    }
}

function Get-DemoCaFile {
    <# The demo CA's certificate (PEM) when the cluster serves HTTPS, else $null: what clients trust. #>
    [OutputType([string])]
    param([Parameter(Mandatory)] $Environment)
    $tls = if ($Environment.PSObject.Properties['Tls']) { $Environment.Tls } else { $null }
    if ($tls) { $tls.CaFile } else { $null }
}

function New-DemoHttpClient {
    <#
    .SYNOPSIS
        An HttpClient for the demo's URLs: with -CaFile it trusts exactly that CA (custom root trust, no callback, so
        it also works on the traffic's runspace-pool threads); no cookies, so each request is balanced afresh.
    #>
    [OutputType([System.Net.Http.HttpClient])]
    param([string] $CaFile, [int] $TimeoutSeconds = 30)
    $handler = [System.Net.Http.SocketsHttpHandler]::new()
    $handler.UseCookies = $false
    $handler.UseProxy = $false
    if ($CaFile) {
        $policy = [System.Security.Cryptography.X509Certificates.X509ChainPolicy]::new()
        $policy.TrustMode = [System.Security.Cryptography.X509Certificates.X509ChainTrustMode]::CustomRootTrust
        $policy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
        [void] $policy.CustomTrustStore.Add([System.Security.Cryptography.X509Certificates.X509CertificateLoader]::LoadCertificateFromFile($CaFile))
        $ssl = [System.Net.Security.SslClientAuthenticationOptions]::new()
        $ssl.CertificateChainPolicy = $policy
        $handler.SslOptions = $ssl
    }
    $client = [System.Net.Http.HttpClient]::new($handler)
    $client.Timeout = [TimeSpan]::FromSeconds($TimeoutSeconds)
    $client
}

function Start-DemoCluster {
    <#
    .SYNOPSIS
        Starts a simulated cluster under the environment's root on free loopback ports (bbsim cluster --detach) and
        builds the target release archive with its SHA-256 (bbsim dist).
    #>
    param(
        [Parameter(Mandatory)] $Environment,
        [int] $Nodes = 3,
        [string] $Grace = '3s',
        [string] $StartDelay = '500ms',
        # The root-path, HTTP-only cluster without git-over-SSH ports (the production-shaped one gives every node one).
        [switch] $Simple,
        [string] $GitDuration = '1500ms',
        # server.context-path of every node, e.g. /bitbucket ('' = root); ignored with -Simple.
        [string] $ContextPath = '',
        # HTTPS on the node ports with a demo CA made now (bbsim certs: <root>/tls/ca.pem, node.pem, node.key, front.pem); ignored with -Simple.
        [switch] $Https
    )
    $e = $Environment
    $extra = @('--heartbeat', '500ms', '--heartbeat-timeout', '3s', '--git-duration', $GitDuration)
    if (-not $Simple) {
        if ($ContextPath) {
            $extra += @('--context-path', $ContextPath)
            $e.ContextPath = $ContextPath
        }
        if ($Https) {
            $files = @(Invoke-Bbsim @('certs', '--output', (Join-Path $e.Root 'tls'), '--name', 'BitbucketZdu Demo CA') -Bbsim $e.Bbsim)
            $e.Tls = [pscustomobject]@{ CaFile = $files[0]; CertificateFile = $files[1]; KeyFile = $files[2]; CombinedFile = $files[3] }
            $extra += @('--tls-cert', $e.Tls.CertificateFile, '--tls-key', $e.Tls.KeyFile)
        }
    }
    $manifest = Start-BbsimCluster -Root $e.Root -Nodes $Nodes -Version $e.Version -User $e.User -Password $e.Password -Grace $Grace `
        -StartDelay $StartDelay -Ssh:(-not $Simple) -Bbsim $e.Bbsim -Extra $extra
    $e.Nodes = @($manifest.nodes | ForEach-Object {
            [pscustomobject]@{ Name = $_.name; Port = [int] $_.port; SshPort = [int] $_.sshPort; Url = $_.url; Home = $_.home; InstallRoot = Split-Path $_.installDir -Parent }
        })

    $distDir = Join-Path $e.Root 'release'
    Invoke-Bbsim @('dist', '--version', $e.TargetVersion, '--output', $distDir, '--format', 'tar.gz') -Bbsim $e.Bbsim | Out-Null
    $e.Archive = Join-Path $distDir "atlassian-bitbucket-$($e.TargetVersion).tar.gz"
    $e.Sha256 = ((Get-Content "$($e.Archive).sha256" -Raw) -split '\s+')[0].ToLowerInvariant()
    $e.Nodes
}

function Get-DemoCredential {
    [OutputType([pscredential])]
    param([Parameter(Mandatory)] $Environment)
    [pscredential]::new($Environment.User, (ConvertTo-SecureString $Environment.Password -AsPlainText -Force))
}

function Start-DemoBalancer {
    <#
    .SYNOPSIS
        Puts a load balancer in front of the cluster's nodes: real HAProxy when 'haproxy' is on the PATH (or -Kind
        HAProxy), else the simulator's loopback balancer (bbsim balancer), which speaks the same runtime API.
        Both: a TCP admin socket at level admin, health check GET <context path>/status every 200 ms, and the shape
        Atlassian documents: an HTTP frontend/backend 'bitbucket' (HAProxy: cookie stickiness) and, when the nodes have
        git-over-SSH ports, a TCP frontend/backend 'bitbucket_ssh' for SSH, its servers checked on the node's HTTP
        /status. When the cluster serves HTTPS (Start-DemoCluster -Https), the front serves HTTPS with the demo
        certificate and the nodes are verified against the demo CA. FrontUrl includes the context path.
    #>
    param(
        [Parameter(Mandatory)] $Environment,
        [ValidateSet('Auto', 'HAProxy', 'Bbsim')] [string] $Kind = 'Auto'
    )
    $haproxy = Get-Command haproxy -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $haproxy -and (Test-Path /usr/sbin/haproxy)) { $haproxy = Get-Command /usr/sbin/haproxy }
    if ($Kind -eq 'Auto') { $Kind = if ($haproxy) { 'HAProxy' } else { 'Bbsim' } }
    if ($Kind -eq 'HAProxy' -and -not $haproxy) { throw "HAProxy is not installed (Debian/Ubuntu: sudo apt-get install haproxy); use -Kind Bbsim." }

    $ports = Get-FreeLoopbackPort -Count 3 -Bbsim $Environment.Bbsim
    $front = $ports[0]; $admin = $ports[1]; $sshFront = $null
    $withSsh = @($Environment.Nodes | Where-Object { $_.PSObject.Properties['SshPort'] -and $_.SshPort -gt 0 }).Count -eq @($Environment.Nodes).Count
    $contextPath = if ($Environment.PSObject.Properties['ContextPath']) { "$($Environment.ContextPath)" } else { '' }
    $tls = if ($Environment.PSObject.Properties['Tls']) { $Environment.Tls } else { $null }
    $caFile = Get-DemoCaFile $Environment
    $scheme = if ($tls) { 'https' } else { 'http' }
    $dir = Join-Path $Environment.Root 'balancer'
    New-Item -ItemType Directory -Path $dir -Force | Out-Null
    $stdout = Join-Path $dir 'stdout.log'; $stderr = Join-Path $dir 'stderr.log'
    if ($withSsh) { $sshFront = $ports[2] }
    if ($Kind -eq 'HAProxy') {
        # HTTPS: the front presents the demo certificate, the servers are verified against the demo CA.
        $toNode = if ($tls) { " ssl verify required ca-file $($tls.CaFile)" } else { '' }
        $checkTls = if ($tls) { " check-ssl verify required ca-file $($tls.CaFile)" } else { '' }
        $bindTls = if ($tls) { " ssl crt $($tls.CombinedFile)" } else { '' }
        $servers = ($Environment.Nodes | ForEach-Object { "  server $($_.Name) 127.0.0.1:$($_.Port) check cookie $($_.Name)$toNode" }) -join "`n"
        $sshSections = ''
        if ($withSsh) {
            $sshServers = ($Environment.Nodes | ForEach-Object { "  server $($_.Name) 127.0.0.1:$($_.SshPort) check port $($_.Port)$checkTls" }) -join "`n"
            $sshSections = @"
frontend git_ssh
  mode tcp
  bind 127.0.0.1:$sshFront
  default_backend bitbucket_ssh
backend bitbucket_ssh
  mode tcp
  balance roundrobin
  option httpchk GET $contextPath/status
  timeout check 2s
  default-server inter 200ms fastinter 200ms downinter 200ms rise 2 fall 3
$sshServers
"@
        }
        $config = Join-Path $dir 'haproxy.cfg'
        Set-Content -Path $config -Value @"
global
  stats socket ipv4@127.0.0.1:$admin level admin
  stats timeout 10s
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
frontend fe
  bind 127.0.0.1:$front$bindTls
  default_backend bitbucket
backend bitbucket
  balance roundrobin
  cookie BBROUTE insert indirect nocache
  option httpchk GET $contextPath/status
  timeout check 2s
  default-server inter 200ms fastinter 200ms downinter 200ms rise 2 fall 3
$servers
$sshSections
"@
        $process = Start-Process -FilePath $haproxy.Source -ArgumentList @('-db', '-f', $config) -PassThru `
            -RedirectStandardOutput $stdout -RedirectStandardError $stderr
    }
    else {
        # The same shape as the HAProxy config: HTTP backend checked on <context>/status, TLS both sides, and a TCP
        # frontend/backend for git over SSH whose servers are checked on their node's HTTP /status.
        $bbsimArgs = @($Environment.Bbsim, 'balancer', '--listen', "$front", '--admin-port', "$admin", '--backend', 'bitbucket',
            '--check-interval-ms', '200', '--rise', '2', '--fall', '2', '--check-path', "$contextPath/status")
        $bbsimArgs += $Environment.Nodes | ForEach-Object { '--server', "$($_.Name)=127.0.0.1:$($_.Port)" }
        if ($tls) { $bbsimArgs += @('--tls-cert', $tls.CertificateFile, '--tls-key', $tls.KeyFile, '--server-ca', $tls.CaFile) }
        if ($withSsh) {
            $bbsimArgs += @('--ssh-listen', "$sshFront", '--ssh-backend', 'bitbucket_ssh')
            $bbsimArgs += $Environment.Nodes | ForEach-Object { '--ssh-server', "$($_.Name)=127.0.0.1:$($_.SshPort)" }
        }
        $process = Start-Process -FilePath 'dotnet' -PassThru -RedirectStandardOutput $stdout -RedirectStandardError $stderr -ArgumentList $bbsimArgs
    }
    $Environment.Balancer = [pscustomobject]@{
        Kind = $Kind; Process = $process; FrontUrl = "${scheme}://127.0.0.1:$front$contextPath"; Endpoint = "tcp://127.0.0.1:$admin"; Backend = 'bitbucket'
        SshPort = $sshFront; SshBackend = $(if ($withSsh) { 'bitbucket_ssh' } else { $null })
    }
    # Ready when every server is UP by the balancer's own health checks and the front end serves a user request.
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    $last = 'nothing yet'
    $http = New-DemoHttpClient -CaFile $caFile -TimeoutSeconds 5
    try {
    while ($true) {
        if ($process.HasExited) { throw "The $Kind load balancer exited (code $($process.ExitCode)): $((Get-Content $stderr, $stdout -Raw -ErrorAction SilentlyContinue) -join ' ')" }
        try {
            $status = Get-DemoBalancerStatus -Port $admin
            $last = ($status.GetEnumerator() | Sort-Object Name | ForEach-Object { "$($_.Name) $($_.Value)" }) -join ', '
            $up = @($status.Values | Where-Object { $_ -eq 'UP' }).Count
            if ($withSsh) { $up = [math]::Min($up, @((Get-DemoBalancerStatus -Port $admin -Backend 'bitbucket_ssh').Values | Where-Object { $_ -eq 'UP' }).Count) }
            if ($up -eq $Environment.Nodes.Count) {
                $r = $http.GetAsync("$($Environment.Balancer.FrontUrl)/").GetAwaiter().GetResult()
                $code = [int] $r.StatusCode
                $r.Dispose()
                if ($code -eq 200) { break }
                $last = "front end answered $code"
            }
        }
        catch { $last = $_.Exception.GetBaseException().Message }
        if ([DateTime]::UtcNow -gt $deadline) { throw "The $Kind load balancer at $($Environment.Balancer.FrontUrl) did not have every node UP within 60 s; last: $last" }
        Start-Sleep -Milliseconds 100
    }
    }
    finally { $http.Dispose() }
    $Environment.Balancer
}

function Get-DemoBalancerStatus {
    <# The balancer's view of its servers: @{ <server> = <status> } from 'show stat' on its TCP runtime API (HAProxy's CSV). #>
    param([Parameter(Mandatory)] [int] $Port, [string] $Backend = 'bitbucket')
    $client = [System.Net.Sockets.TcpClient]::new()
    try {
        $client.ReceiveTimeout = 5000
        $client.Connect([System.Net.IPAddress]::Loopback, $Port)
        $stream = $client.GetStream()
        $bytes = [Text.Encoding]::ASCII.GetBytes("show stat`n")
        $stream.Write($bytes, 0, $bytes.Length)
        $client.Client.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
        $csv = [IO.StreamReader]::new($stream).ReadToEnd()
    }
    finally { $client.Dispose() }
    $rows = ($csv -split "`n" | Where-Object { $_.Trim() }) -replace '^# ', '' | ConvertFrom-Csv
    $status = @{}
    foreach ($row in $rows) {
        if ($row.pxname -eq $Backend -and $row.svname -notin 'FRONTEND', 'BACKEND') { $status[$row.svname] = $row.status }
    }
    $status
}

function ConvertTo-Psd1String([string] $Value) { "'" + $Value.Replace("'", "''") + "'" }

function New-DemoProfile {
    <#
    .SYNOPSIS
        Writes the cluster profile (.psd1) of a demo environment: nodes worked on locally (Remoting 'local', Service
        'Script', InstallRoot <root>/node-N), the load balancer, the archive and short timeouts. Returns the path.
    #>
    [OutputType([string])]
    param(
        [Parameter(Mandatory)] $Environment,
        [string] $Path = (Join-Path $Environment.Root 'cluster.psd1'),
        [string] $Name = 'demo',
        [int] $MaxPollMilliseconds = 500
    )
    $q = { param($v) ConvertTo-Psd1String $v }
    $lb = $Environment.Balancer
    $ssh = $lb.PSObject.Properties['SshBackend'] -and $lb.SshBackend
    $nodes = ($Environment.Nodes | ForEach-Object {
            # Each node is a member of the HTTP backend and, with one, of the SSH backend: both are drained before it stops.
            $member = if ($ssh) { "Members = @{ lb = $(& $q $_.Name); 'lb-ssh' = $(& $q $_.Name) }" } else { "Member = $(& $q $_.Name)" }
            "        @{ Name = $(& $q $_.Name); ApiAddress = $(& $q "127.0.0.1:$($_.Port)"); Url = $(& $q $_.Url); Remoting = 'local'; Service = 'Script'; InstallRoot = $(& $q $_.InstallRoot); $member }"
        }) -join "`n"
    $sshLb = if ($ssh) { "`n        @{ Name = 'lb-ssh'; Kind = 'HAProxy'; Settings = @{ Endpoint = $(& $q $lb.Endpoint); Backend = $(& $q $lb.SshBackend) } }" } else { '' }
    $text = @"
# Cluster profile of the simulated demo cluster (written by tools/DemoCluster.psm1).
@{
    Name          = $(& $q $Name)
    BaseUrl       = $(& $q $lb.FrontUrl)
    TargetVersion = $(& $q $Environment.TargetVersion)
    Archive       = @{ Path = $(& $q $Environment.Archive); Sha256 = $(& $q $Environment.Sha256) }
    Nodes         = @(
$nodes
    )
    LoadBalancers = @(
        @{ Name = 'lb'; Kind = 'HAProxy'; Settings = @{ Endpoint = $(& $q $lb.Endpoint); Backend = $(& $q $lb.Backend) } }$sshLb
    )
    MinFreeDiskGB = 0.1
    JournalPath   = $(& $q (Join-Path $Environment.Root 'journal'))$(if ($ca = Get-DemoCaFile $Environment) { "`n    # The demo's internal CA: trusted for the cluster API, each node's API and /status.`n    Tls           = @{ TrustedCertificatePath = $(& $q $ca) }" })
    # Short waits: the simulator stops in ~1 s and starts in ~1 s.
    Timeouts      = @{ DrainSeconds = 15; StopSeconds = 30; OfflineSeconds = 20; StartSeconds = 60; HealthySeconds = 30; StableSeconds = 60; FirstPollMilliseconds = 100; MaxPollMilliseconds = $MaxPollMilliseconds }
}
"@
    Set-Content -Path $Path -Value $text -Encoding utf8
    $Environment.ProfilePath = $Path
    $Path
}

function Start-DemoTraffic {
    <#
    .SYNOPSIS
        Steady user traffic through the load balancer: $Workers loops of GET /?delayMs=N, each as its own user, in a
        runspace pool, and $GitWorkers loops each of git clones over HTTP (GET /scm/..., streamed) and, when the
        balancer has an SSH frontend, over SSH (the simulator's SSH-like exchange). Bounded: it stops by itself after
        $MaxMinutes. Stop-DemoTraffic returns the counts.
    #>
    param(
        [Parameter(Mandatory)] $Environment,
        [int] $Workers = 3,
        [int] $DelayMs = 100,
        [int] $MaxMinutes = 10,
        [int] $GitWorkers = 0
    )
    $state = [hashtable]::Synchronized(@{ Stop = $false })
    $failures = [System.Collections.Concurrent.ConcurrentQueue[string]]::new()
    $pool = [runspacefactory]::CreateRunspacePool(1, $Workers)
    $pool.Open()
    $newClient = ${function:New-DemoHttpClient}.ToString()
    $caFile = Get-DemoCaFile $Environment
    $worker = {
        param($Url, $User, $Key, $State, $Failures, $Deadline, $NewClient, $CaFile)
        $client = & ([scriptblock]::Create($NewClient)) -CaFile $CaFile
        $ok = 0; $failed = 0
        try {
            while (-not $State.Stop -and [DateTime]::UtcNow -lt $Deadline) {
                $request = [System.Net.Http.HttpRequestMessage]::new([System.Net.Http.HttpMethod]::Get, $Url)
                $request.Headers.Add('X-Bbsim-User', $User)
                try {
                    $response = $client.SendAsync($request).GetAwaiter().GetResult()
                    if ($response.IsSuccessStatusCode) { $ok++ }
                    else { $failed++; $Failures.Enqueue("$([DateTime]::UtcNow.ToString('HH:mm:ss.fff')) HTTP $([int] $response.StatusCode) $($response.ReasonPhrase)") }
                    $response.Dispose()
                }
                catch {
                    $failed++
                    $Failures.Enqueue("$([DateTime]::UtcNow.ToString('HH:mm:ss.fff')) $($_.Exception.GetBaseException().Message)")
                }
                $State[$Key] = @($ok, $failed)
            }
        }
        finally { $client.Dispose() }
    }
    $gitWorker = {
        param($Kind, $Url, $SshPort, $Key, $State, $Failures, $Deadline, $NewClient, $CaFile)
        $client = & ([scriptblock]::Create($NewClient)) -CaFile $CaFile
        $ok = 0; $failed = 0
        try {
            while (-not $State.Stop -and [DateTime]::UtcNow -lt $Deadline) {
                try {
                    if ($Kind -eq 'http') {
                        $response = $client.GetAsync($Url).GetAwaiter().GetResult()
                        $body = $response.Content.ReadAsStringAsync().GetAwaiter().GetResult()
                        $response.Dispose()
                        if (-not $response.IsSuccessStatusCode) { throw "HTTP $([int] $response.StatusCode)" }
                        if ($body -notmatch 'done \S+\n$') { throw 'clone over HTTP cut short' }
                    }
                    else {
                        $tcp = [System.Net.Sockets.TcpClient]::new()
                        try {
                            $tcp.ReceiveTimeout = 30000
                            $tcp.Connect([System.Net.IPAddress]::Loopback, $SshPort)
                            $stream = $tcp.GetStream()
                            $reader = [IO.StreamReader]::new($stream, [Text.Encoding]::ASCII)
                            $banner = $reader.ReadLine()
                            if ($banner -notlike 'SSH-2.0-bbsim *') { throw "refused: $banner" }
                            $bytes = [Text.Encoding]::ASCII.GetBytes("git-upload-pack '/project/repo.git'`n")
                            $stream.Write($bytes, 0, $bytes.Length)
                            $last = $null
                            while ($null -ne ($line = $reader.ReadLine())) { $last = $line }
                            if ($last -notlike 'done *') { throw "clone over SSH cut short after: $last" }
                        }
                        finally { $tcp.Dispose() }
                    }
                    $ok++
                }
                catch {
                    $failed++
                    $Failures.Enqueue("$([DateTime]::UtcNow.ToString('HH:mm:ss.fff')) git over $($Kind): $($_.Exception.GetBaseException().Message)")
                }
                $State[$Key] = @($ok, $failed)
            }
        }
        finally { $client.Dispose() }
    }
    $lb = $Environment.Balancer
    $sshPort = if ($lb.PSObject.Properties['SshPort']) { $lb.SshPort } else { $null }
    $gitKinds = @(if ($GitWorkers -gt 0) { 'http'; if ($sshPort) { 'ssh' } })
    $pool.SetMaxRunspaces($Workers + $GitWorkers * $gitKinds.Count) | Out-Null
    $deadline = [DateTime]::UtcNow.AddMinutes($MaxMinutes)
    $gitRuns = @(foreach ($kind in $gitKinds) {
            foreach ($i in 1..$GitWorkers) {
                $ps = [powershell]::Create()
                $ps.RunspacePool = $pool
                [void] $ps.AddScript($gitWorker).AddArgument($kind).AddArgument("$($lb.FrontUrl)/scm/project/repo.git/info/refs?service=git-upload-pack").
                AddArgument([int] $sshPort).AddArgument("$($kind[0])$i").AddArgument($state).AddArgument($failures).AddArgument($deadline).
                AddArgument($newClient).AddArgument($caFile)
                [pscustomobject]@{ PowerShell = $ps; Handle = $ps.BeginInvoke() }
            }
        })
    $runs = @(1..$Workers | ForEach-Object {
            $ps = [powershell]::Create()
            $ps.RunspacePool = $pool
            [void] $ps.AddScript($worker).AddArgument("$($Environment.Balancer.FrontUrl)/?delayMs=$DelayMs").AddArgument("user-$_").
            AddArgument("w$_").AddArgument($state).AddArgument($failures).AddArgument($deadline).AddArgument($newClient).AddArgument($caFile)
            [pscustomobject]@{ PowerShell = $ps; Handle = $ps.BeginInvoke() }
        })
    $Environment.Traffic = [pscustomobject]@{ State = $state; Failures = $failures; Pool = $pool; Runs = $runs + $gitRuns; Started = [DateTime]::UtcNow; Stopped = $null }
    $Environment.Traffic
}

function Get-DemoTrafficCount {
    <# The requests so far: Requests, Failed (web GETs); GitHttp, GitHttpFailed, GitSsh, GitSshFailed (clones). #>
    param([Parameter(Mandatory)] $Environment)
    $t = $Environment.Traffic
    $n = @{ w = @(0, 0); h = @(0, 0); s = @(0, 0) }
    if ($t) {
        foreach ($k in @($t.State.Keys)) {
            $kind = "$k".Substring(0, 1)
            if ($n.ContainsKey($kind) -and "$k" -ne 'Stop') { $c = $t.State[$k]; $n[$kind] = @(($n[$kind][0] + $c[0]), ($n[$kind][1] + $c[1])) }
        }
    }
    [pscustomobject]@{
        Requests = $n.w[0] + $n.w[1]; Failed = $n.w[1]
        GitHttp = $n.h[0] + $n.h[1]; GitHttpFailed = $n.h[1]; GitSsh = $n.s[0] + $n.s[1]; GitSshFailed = $n.s[1]
    }
}

function Stop-DemoTraffic {
    <# Stops the traffic loops (waits for requests in flight) and returns Requests, Failed, Failures (the first 20), Seconds. #>
    param([Parameter(Mandatory)] $Environment)
    $t = $Environment.Traffic
    if (-not $t) { return $null }
    $t.State.Stop = $true
    foreach ($r in $t.Runs) {
        try { $r.PowerShell.EndInvoke($r.Handle) | Out-Null } catch { $t.Failures.Enqueue("traffic worker: $($_.Exception.Message)") }
        $r.PowerShell.Dispose()
    }
    $t.Pool.Dispose()
    if (-not $t.Stopped) { $t.Stopped = [DateTime]::UtcNow }
    $count = Get-DemoTrafficCount $Environment
    [pscustomobject]@{
        Requests = $count.Requests
        Failed   = $count.Failed
        GitHttp = $count.GitHttp; GitHttpFailed = $count.GitHttpFailed; GitSsh = $count.GitSsh; GitSshFailed = $count.GitSshFailed
        Failures = @($t.Failures.ToArray() | Select-Object -First 20)
        Seconds  = [math]::Round(($t.Stopped - $t.Started).TotalSeconds, 1)
    }
}

function Stop-DemoEnvironment {
    <# Stops everything Start-Demo* started: traffic, the load balancer process, the simulated nodes. Safe to call twice. #>
    param([Parameter(Mandatory)] $Environment, [switch] $RemoveRoot)
    if ($Environment.Traffic -and -not $Environment.Traffic.Stopped) { Stop-DemoTraffic $Environment | Out-Null }
    $lb = $Environment.Balancer
    if ($lb -and $lb.Process -and -not $lb.Process.HasExited) {
        Stop-Process -Id $lb.Process.Id -Force -ErrorAction SilentlyContinue
        $lb.Process.WaitForExit(5000) | Out-Null
    }
    try { Stop-BbsimCluster -Root $Environment.Root -Bbsim $Environment.Bbsim } catch { Write-Verbose "bbsim stop: $_" }   # best effort, as every step here
    if ($RemoveRoot) { Remove-Item $Environment.Root -Recurse -Force -ErrorAction SilentlyContinue }
}

function New-DemoRoot {
    <# A fresh temp folder for one demo or benchmark run. #>
    [OutputType([string])]
    param([string] $Prefix = 'bbzdu-demo')
    $root = Join-Path ([IO.Path]::GetTempPath()) ("$Prefix-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
    New-Item -ItemType Directory -Path $root -Force | Out-Null
    $root
}

Export-ModuleMember -Function Resolve-BuiltModulePath, Get-BbsimPath, Invoke-Bbsim, Get-FreeLoopbackPort, New-DemoEnvironment, Start-DemoCluster, Get-DemoCredential, Get-DemoCaFile, New-DemoHttpClient,
    Start-DemoBalancer, New-DemoProfile, Start-DemoTraffic, Get-DemoTrafficCount, Stop-DemoTraffic, Stop-DemoEnvironment, New-DemoRoot
