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
    }
}
