# The demo's profile generation (tools/DemoCluster.psm1) writes a profile the module accepts. Fast: no cluster is started.
BeforeAll {
    Import-Module $env:BITBUCKETZDU_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot '../../tools/DemoCluster.psm1') -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ("bbzdu-pester-demo-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $Dir | Out-Null
}

AfterAll {
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Demo profile' {
    It 'is a valid cluster profile with local Script nodes and the load balancer as members' {
        $demo = New-DemoEnvironment -Bbsim (Join-Path $Dir 'bbsim.dll') -Root $Dir
        $demo.Nodes = @(1..3 | ForEach-Object {
                [pscustomobject]@{ Name = "node-$_"; Port = 7990 + $_; Url = "http://127.0.0.1:$(7990 + $_)"; Home = (Join-Path $Dir "node-$_/home"); InstallRoot = (Join-Path $Dir "node-$_") }
            })
        $demo.Archive = Join-Path $Dir "it's atlassian-bitbucket-8.19.4.tar.gz"
        Set-Content -LiteralPath $demo.Archive -Value 'pretend release'
        $demo.Sha256 = (Get-FileHash -LiteralPath $demo.Archive -Algorithm SHA256).Hash.ToLowerInvariant()
        $demo.Balancer = [pscustomobject]@{ Kind = 'Bbsim'; FrontUrl = 'http://127.0.0.1:8080'; Endpoint = 'tcp://127.0.0.1:9999'; Backend = 'bitbucket' }

        $path = New-DemoProfile -Environment $demo
        Test-BbClusterProfile -ProfilePath $path -SkipProbe -Quiet | Should -BeTrue
        $data = Import-PowerShellDataFile $path
        $data.Archive.Path | Should -Be $demo.Archive -Because 'quotes in paths are escaped'
        $data.Nodes.Remoting | Sort-Object -Unique | Should -Be 'local'
        $data.Nodes.Service | Sort-Object -Unique | Should -Be 'Script'
        $data.Nodes.Member | Should -Be @('node-1', 'node-2', 'node-3')
        $data.LoadBalancers[0].Settings.Endpoint | Should -Be 'tcp://127.0.0.1:9999'
        $data.ContainsKey('Tls') | Should -BeFalse -Because 'a plain-HTTP cluster needs no CA'
    }

    It 'puts each node in the HTTP and the SSH backend and trusts the demo CA for a production-shaped cluster' {
        $demo = New-DemoEnvironment -Bbsim (Join-Path $Dir 'bbsim.dll') -Root (Join-Path $Dir 'production')
        # The profile names the CA file (it must exist); the real one, made by 'bbsim certs', is used by Demo.Tests.ps1.
        $ca = Join-Path $demo.Root "it's ca.pem"
        Set-Content -LiteralPath $ca -Value 'pretend CA'
        $demo.Tls = [pscustomobject]@{ CaFile = $ca }
        $demo.ContextPath = '/bitbucket'
        $demo.Nodes = @(1..3 | ForEach-Object {
                [pscustomobject]@{ Name = "node-$_"; Port = 7990 + $_; SshPort = 7998 + $_; Url = "https://127.0.0.1:$(7990 + $_)/bitbucket"; Home = (Join-Path $Dir "node-$_/home"); InstallRoot = (Join-Path $Dir "node-$_") }
            })
        $demo.Archive = Join-Path $Dir 'atlassian-bitbucket-8.19.4.tar.gz'
        Set-Content -LiteralPath $demo.Archive -Value 'pretend release'
        $demo.Sha256 = (Get-FileHash -LiteralPath $demo.Archive -Algorithm SHA256).Hash.ToLowerInvariant()
        $demo.Balancer = [pscustomobject]@{ Kind = 'Bbsim'; FrontUrl = 'https://127.0.0.1:8443/bitbucket'; Endpoint = 'tcp://127.0.0.1:9999'; Backend = 'bitbucket'; SshPort = 7999; SshBackend = 'bitbucket_ssh' }

        $path = New-DemoProfile -Environment $demo
        Test-BbClusterProfile -ProfilePath $path -SkipProbe -Quiet | Should -BeTrue
        $data = Import-PowerShellDataFile $path
        $data.BaseUrl | Should -Be 'https://127.0.0.1:8443/bitbucket'
        $data.Tls.TrustedCertificatePath | Should -Be $ca
        $data.LoadBalancers.Settings.Backend | Should -Be @('bitbucket', 'bitbucket_ssh')
        foreach ($n in $data.Nodes) {
            $n.Members.lb | Should -Be $n.Name
            $n.Members.'lb-ssh' | Should -Be $n.Name
            $n.Url | Should -BeLike 'https://*/bitbucket'
        }
    }
}
