# One login attempt per command: a wrong password is tried once and refused at once with ZduUnauthorized. Bitbucket asks
# for a CAPTCHA after a few failed logins and then refuses that account's REST calls, so every extra attempt counts.
# The failed logins are counted where Bitbucket sees them: the simulated nodes' own logs ("Authentication failed for
# user ..." lines, one per refused request). One small cluster for every case (seconds).
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'SimCluster.psm1') -Force
    $script:Root = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-pester-login-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Root | Out-Null
    $script:Password = 'canary-Pa55w0rd!'
    $script:Manifest = Start-SimCluster -Root (Join-Path $Root 'cluster') -Nodes 2 -Password $Password
    $script:Balancer = Start-SimBalancer -Manifest $Manifest
    $script:Uri = "http://127.0.0.1:$($Balancer.ListenPort)/"
    $script:Good = [pscredential]::new('admin', (ConvertTo-SecureString $Password -AsPlainText -Force))
    $script:Bad = [pscredential]::new('admin', (ConvertTo-SecureString 'a-typo' -AsPlainText -Force))

    # The archive is never read: a bad password ends the run before any probe that would.
    $archive = Join-Path $Root 'atlassian-bitbucket-8.19.4.tar.gz'
    Set-Content -LiteralPath $archive -Value 'pretend release'
    $sha = (Get-FileHash -LiteralPath $archive -Algorithm SHA256).Hash.ToLowerInvariant()
    $nodes = foreach ($node in $Manifest.nodes) {
        "@{ Name = '$($node.name)'; Url = '$($node.url)'; Remoting = 'local'; Service = 'Script'; Member = '$($node.name)'; InstallRoot = '$(Split-Path -Parent $node.installDir)' }"
    }
    $script:ProfilePath = Join-Path $Root 'prod.psd1'
    @"
@{
    Name          = 'sim'
    BaseUrl       = '$Uri'
    TargetVersion = '8.19.4'
    Archive       = @{ Path = '$archive'; Sha256 = '$sha' }
    LoadBalancers = @(@{ Name = 'lb'; Kind = 'HAProxy'; Settings = @{ Endpoint = 'tcp://127.0.0.1:$($Balancer.AdminPort)'; Backend = 'bitbucket' } })
    Nodes         = @(
        $($nodes -join "`n        ")
    )
    MinFreeDiskGB = 0
    JournalPath   = '$(Join-Path $Root 'journal')'
}
"@ | Set-Content -LiteralPath $ProfilePath -Encoding utf8

    # Failed logins so far, as the nodes logged them (the balancer spreads requests over both).
    function script:Get-FailedLogin {
        $count = 0
        foreach ($node in $Manifest.nodes) {
            $log = Join-Path $node.home 'log/atlassian-bitbucket.log'
            if (Test-Path -LiteralPath $log) { $count += @(Select-String -LiteralPath $log -Pattern 'Authentication failed for user' -SimpleMatch).Count }
        }
        $count
    }

    # What a command costs in failed logins; its error record (it must fail).
    function script:Measure-FailedLogin([scriptblock] $Command) {
        $before = Get-FailedLogin
        $record = $null
        try { & $Command } catch { $record = $_ }
        [pscustomobject]@{ Failed = (Get-FailedLogin) - $before; Error = $record }
    }
}

AfterAll {
    Stop-SimBalancer $Balancer
    Stop-SimCluster -Root (Join-Path $Root 'cluster')
    Remove-Item $Root -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A wrong password' {
    It 'costs Connect-BbCluster one failed login and says what to check' {
        $r = Measure-FailedLogin { Connect-BbCluster -Uri $Uri -Credential $Bad -ErrorAction Stop }

        $r.Failed | Should -Be 1
        $r.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
        $r.Error.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $r.Error.ErrorDetails.RecommendedAction | Should -Match 'CAPTCHA'
        $r.Error.ErrorDetails.RecommendedAction | Should -Match 'system administrator'
        "$($r.Error)" | Should -Not -Match 'a-typo'
    }

    It 'costs Invoke-BbRollingUpgrade with a profile one failed login, refused at once with ZduUnauthorized' {
        $r = Measure-FailedLogin { Invoke-BbRollingUpgrade -ProfilePath $ProfilePath -Credential $Bad -Confirm:$false -ErrorAction Stop }

        $r.Failed | Should -Be 1 -Because 'the credential is tried once, before the probes of every node run in parallel'
        $r.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
        $r.Error.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $r.Error.Exception.Message.Length | Should -BeLessThan 600 -Because 'one short message, not a list of every probe that failed'
        $r.Error.ErrorDetails.RecommendedAction | Should -Match 'CAPTCHA'
        "$($r.Error.TargetObject)" | Should -BeLike "$Uri*" -Because 'the target is the URL that refused the credential'
    }

    It 'costs Test-BbClusterProfile one failed login' {
        $r = Measure-FailedLogin { Test-BbClusterProfile -ProfilePath $ProfilePath -Credential $Bad -ErrorAction Stop }

        $r.Failed | Should -Be 1
        $r.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
    }

    Context 'that changed after Connect-BbCluster (the -Connection path)' {
        BeforeAll {
            $script:Connection = Connect-BbCluster -Uri $Uri -Credential $Good -PassThru
            # The sysadmin's password changes (simulator fault adminPassword); wait until both nodes take the new one,
            # asking with the new password so the wait itself sends no failed login.
            $faults = Join-Path $Manifest.sharedHome 'bbsim/faults'
            New-Item -ItemType Directory -Path $faults -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $faults 'cluster.json') -Value '{"adminPassword": "changed-Pa55w0rd!"}'
            $changed = [pscredential]::new('admin', (ConvertTo-SecureString 'changed-Pa55w0rd!' -AsPlainText -Force))
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            foreach ($node in $Manifest.nodes) {
                while ($true) {
                    try { Invoke-RestMethod -Uri "$($node.url.TrimEnd('/'))/rest/zdu/cluster" -Credential $changed -Authentication Basic -AllowUnencryptedAuthentication | Out-Null; break }
                    catch { if ([DateTime]::UtcNow -gt $deadline) { throw "node $($node.name) never took the new password: $_" } }
                    Start-Sleep -Milliseconds 100   # polling with a deadline, not synchronisation by sleep
                }
            }
        }

        AfterAll {
            Remove-Item -LiteralPath (Join-Path $Manifest.sharedHome 'bbsim/faults/cluster.json') -ErrorAction SilentlyContinue
        }

        It 'costs Invoke-BbRollingUpgrade -Connection one failed login' {
            $r = Measure-FailedLogin { Invoke-BbRollingUpgrade -ProfilePath $ProfilePath -Connection $Connection -Confirm:$false -ErrorAction Stop }

            $r.Failed | Should -Be 1
            $r.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
        }

        It 'costs Get-BbClusterStatus and Wait-BbClusterState one failed login each, with the cluster URL as target' {
            $status = Measure-FailedLogin { Get-BbClusterStatus -Connection $Connection -ErrorAction Stop }
            $wait = Measure-FailedLogin { Wait-BbClusterState -State STABLE -TimeoutSec 10 -Connection $Connection -ErrorAction Stop }

            $status.Failed | Should -Be 1
            $wait.Failed | Should -Be 1 -Because 'a refused credential is not waited out'
            $status.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
            $wait.Error.FullyQualifiedErrorId | Should -BeLike 'ZduUnauthorized,*'
            "$($status.Error.TargetObject)" | Should -Be $Uri
        }
    }
}
