<#
.SYNOPSIS
    The one PowerShell way to the simulator (bbsim), shared by the Pester suite (tests/pester/SimCluster.psm1) and the
    demo tools (tools/DemoCluster.psm1, the demo, the benchmarks): find bbsim.dll, run it, pick free loopback ports,
    start a detached simulated cluster and read its bbsim-cluster.json, stop it, and write a loopback sshd's folder.

    Ports and the sshd folder come from bbsim.dll itself (BitbucketZdu.Simulator.Launcher.FreePort / LoopbackSshd,
    loaded into this session), the same code the C# tests use through tests/BitbucketZdu.TestSupport: ports below the
    kernel's ephemeral range, one sshd_config writer.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$script:RepoRoot = Split-Path $PSScriptRoot -Parent

function Get-BbsimPath {
    <# The simulator's bbsim.dll: of -Configuration when given, else the newest built one (build.ps1 Build builds it). #>
    [OutputType([string])]
    param([ValidateSet('Release', 'Debug')] [string] $Configuration)
    $bin = Join-Path $script:RepoRoot 'src/BitbucketZdu.Simulator/bin'
    if ($Configuration) {
        $dll = Join-Path $bin "$Configuration/net10.0/bbsim.dll"
        if (-not (Test-Path $dll)) { throw "The simulator is not built: '$dll' is missing. Build it: dotnet pwsh ./build.ps1 Build -Configuration $Configuration" }
        return $dll
    }
    $found = Get-ChildItem -Path $bin -Filter 'bbsim.dll' -Recurse -ErrorAction SilentlyContinue |
        Where-Object { $_.Directory.Name -like 'net*' } | Sort-Object LastWriteTimeUtc -Descending | Select-Object -First 1
    if (-not $found) { throw "bbsim.dll not found under $bin. Build it first: dotnet pwsh ./build.ps1 Build" }
    $found.FullName
}

function Invoke-Bbsim {
    <# Runs 'dotnet bbsim.dll <args>' and fails with its output on a non-zero exit code. Returns its output lines. #>
    param([Parameter(Mandatory, Position = 0)] [string[]] $Arguments, [string] $Bbsim = (Get-BbsimPath))
    $out = & dotnet $Bbsim @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "bbsim $($Arguments -join ' ') failed (exit $LASTEXITCODE): $(($out | Out-String).Trim())" }
    $out | ForEach-Object { "$_" }
}

function Import-BbsimType {
    # bbsim.dll's port picker and sshd folder writer, loaded once per session (whichever build came first).
    param([string] $Bbsim)
    if (-not ('BitbucketZdu.Simulator.Launcher.FreePort' -as [type])) {
        Add-Type -LiteralPath $(if ($Bbsim) { $Bbsim } else { Get-BbsimPath })
    }
}

function Get-FreeLoopbackPort {
    <# $Count distinct free TCP ports on 127.0.0.1, below the ephemeral range (the C# tests' FreePort). #>
    [OutputType([int[]])]
    param([int] $Count = 1, [string] $Bbsim)
    Import-BbsimType $Bbsim
    , [int[]] @(1..$Count | ForEach-Object { [BitbucketZdu.Simulator.Launcher.FreePort]::Next() })
}

function Start-BbsimCluster {
    <#
    .SYNOPSIS
        bbsim cluster --detach under $Root on free loopback ports (an SSH port per node with -Ssh); returns the manifest
        (bbsim-cluster.json: nodes[name, port, url, home, installDir, sshPort], user, password, sharedHome).
    #>
    param(
        [Parameter(Mandatory)] [string] $Root,
        [int] $Nodes = 2,
        [string] $Version = '8.19.3',
        [string] $User = 'admin',
        [Parameter(Mandatory)] [string] $Password,
        [string] $Grace = '3s',
        [string] $StartDelay = '100ms',
        [switch] $Ssh,
        [string] $Bbsim = (Get-BbsimPath),
        # Further bbsim cluster options (--heartbeat, --git-duration, --context-path, --tls-cert, ...).
        [string[]] $Extra = @()
    )
    $ports = Get-FreeLoopbackPort -Count ($Nodes * $(if ($Ssh) { 2 } else { 1 })) -Bbsim $Bbsim
    $arguments = @('cluster', '--nodes', "$Nodes", '--version', $Version, '--root', $Root, '--ports', ($ports[0..($Nodes - 1)] -join ','),
        '--user', $User, '--password', $Password, '--grace', $Grace, '--start-delay', $StartDelay, '--detach')
    if ($Ssh) { $arguments += @('--ssh-ports', ($ports[$Nodes..($Nodes * 2 - 1)] -join ',')) }
    Invoke-Bbsim ($arguments + $Extra) -Bbsim $Bbsim | Out-Null
    Get-Content (Join-Path $Root 'bbsim-cluster.json') -Raw | ConvertFrom-Json
}

function Stop-BbsimCluster {
    <# bbsim stop --root $Root when a cluster was started there (fails with bbsim's output when the stop fails); safe to call twice. #>
    param([Parameter(Mandatory)] [string] $Root, [string] $Bbsim = (Get-BbsimPath))
    if (Test-Path (Join-Path $Root 'bbsim-cluster.json')) { Invoke-Bbsim @('stop', '--root', $Root) -Bbsim $Bbsim | Out-Null }
}

function New-BbsimSshdFolder {
    <# Keys, known_hosts and sshd_config of a loopback sshd in $Root on a free port (bbsim.dll's LoopbackSshd, as the C# tests' SshServer). #>
    param([Parameter(Mandatory)] [string] $Root, [Parameter(Mandatory)] [string] $SshKeygen, [string] $Bbsim)
    Import-BbsimType $Bbsim
    [BitbucketZdu.Simulator.Launcher.LoopbackSshd]::Prepare($Root, (Get-FreeLoopbackPort -Bbsim $Bbsim)[0], $SshKeygen, $null)
}

Export-ModuleMember -Function Get-BbsimPath, Invoke-Bbsim, Get-FreeLoopbackPort, Start-BbsimCluster, Stop-BbsimCluster, New-BbsimSshdFolder
