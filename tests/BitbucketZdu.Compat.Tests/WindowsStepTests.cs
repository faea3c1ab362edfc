using System.Collections;
using System.IO.Compression;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Nodes;

namespace BitbucketZdu.Compat.Tests;

/// <summary>
/// The Windows step scripts run for real, in a local runspace, through the PSSession shell's own wrapper (what
/// <see cref="PSSessionShell"/> runs inside a remote session), against a fake install laid out as Atlassian's
/// Windows installer does (Program Files install dir, ApplicationData home) in a temp folder whose path has spaces.
/// The service cmdlets are functions in the runspace that record their calls.
/// </summary>
public sealed class WindowsStepTests : IDisposable
{
    private const string Stubs = """
        $global:BbCalls = [System.Collections.Generic.List[string]]::new()
        function Get-Service { param([string]$Name, $ErrorAction) $global:BbCalls.Add("Get-Service $Name"); if ($Name -eq 'AtlassianBitbucket') { [pscustomobject]@{ Name = $Name; Status = 'Running' } } }
        function Stop-Service { param([string]$Name) $global:BbCalls.Add("Stop-Service $Name") }
        function Start-Service { param([string]$Name) $global:BbCalls.Add("Start-Service $Name") }
        function Set-Service { param([string]$Name) $global:BbCalls.Add("Set-Service $Name") }
        """;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "bbzdu win " + Guid.NewGuid().ToString("N")[..8]);
    private readonly Runspace _runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault());

    public WindowsStepTests()
    {
        _runspace.Open();
        using var ps = PowerShell.Create(_runspace);
        ps.AddScript(Stubs).Invoke();
        Assert.False(ps.HadErrors);
    }

    public void Dispose()
    {
        _runspace.Dispose();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string ProgramFiles => Path.Combine(_root, "Program Files", "Atlassian", "Bitbucket");
    private string InstallDir => Path.Combine(ProgramFiles, "8.19.3");
    private string HomeDir => Path.Combine(_root, "Atlassian", "ApplicationData", "Bitbucket");

    /// <summary>The installer's layout: bin with the .bat scripts and procrun's bitbucket.exe, app, conf, jre; the home beside.</summary>
    private void LayOutInstall()
    {
        foreach (var d in new[] { "bin", @"app/WEB-INF/lib", "conf", "jre/bin" }) Directory.CreateDirectory(Path.Combine(InstallDir, d));
        foreach (var f in new[] { "bin/start-bitbucket.bat", "bin/stop-bitbucket.bat", "bin/set-bitbucket-home.bat", "bin/bitbucket.exe", "app/WEB-INF/lib/bitbucket-api-8.19.3.jar" })
            File.WriteAllText(Path.Combine(InstallDir, f), "x");
        Directory.CreateDirectory(Path.Combine(HomeDir, "shared"));
    }

    /// <summary>An INodeShell that runs each command through <see cref="PSSessionShell.WindowsWrapper"/> in the local runspace.</summary>
    private sealed class RunspaceShell(Runspace runspace) : INodeShell
    {
        public string HostName => "win-node";
        public ShellPlatform Platform => ShellPlatform.Windows;
        public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
        {
            using var ps = PowerShell.Create(runspace);
            ps.AddScript(PSSessionShell.WindowsWrapper).AddArgument(ShellQuote.WithEnvironment(Platform, command, environment));
            var table = ps.Invoke().Select(o => o.BaseObject).OfType<IDictionary>().Last();
            return Task.FromResult(new ShellResult(Convert.ToInt32(table["ExitCode"]), table["Out"]?.ToString() ?? "", table["Err"]?.ToString() ?? ""));
        }
        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(File.Exists(path) || Directory.Exists(path));
        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(File.ReadAllText(path));
        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) { File.WriteAllText(path, content); return Task.CompletedTask; }
        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) { File.Copy(localPath, remotePath, true); return Task.CompletedTask; }
        public void Dispose() { }
    }

    private NodeOps Ops() => NodeOps.For(new RunspaceShell(_runspace), new NodeStepOptions());

    private List<string> Calls()
    {
        using var ps = PowerShell.Create(_runspace);
        return ps.AddScript("$global:BbCalls").Invoke().Select(o => o.ToString()).ToList();
    }

    [Fact]
    public async Task The_wrapper_fails_a_command_that_writes_an_error_record_without_terminating()
    {
        var shell = new RunspaceShell(_runspace);
        var missing = Path.Combine(_root, "no such dir", "x");
        var moved = await shell.RunAsync($"Move-Item -LiteralPath {ShellQuote.Ps(missing)} -Destination {ShellQuote.Ps(missing + "2")}; 'after'", TimeSpan.FromMinutes(1));
        Assert.Equal(1, moved.ExitCode);
        Assert.Contains("after", moved.StandardOutput);            // the command went on, as PowerShell does
        Assert.Contains(missing, moved.StandardError);

        var got = await shell.RunAsync($"Get-Item -LiteralPath {ShellQuote.Ps(missing)}", TimeSpan.FromMinutes(1));
        Assert.Equal(1, got.ExitCode);

        var thrown = await shell.RunAsync("throw 'boom'", TimeSpan.FromMinutes(1));
        Assert.Equal(1, thrown.ExitCode);
        Assert.Contains("boom", thrown.StandardError);

        var native = await shell.RunAsync("& /bin/sh -c 'exit 3'", TimeSpan.FromMinutes(1));
        Assert.Equal(3, native.ExitCode);

        var ok = await shell.RunAsync("'fine'; Get-Item -LiteralPath $HOME -ErrorAction SilentlyContinue | Out-Null", TimeSpan.FromMinutes(1));
        Assert.Equal(0, ok.ExitCode);
        Assert.Equal("fine", ok.StandardOutput.Trim());
    }

    [Fact]
    public async Task Rename_onto_an_existing_dir_and_from_a_missing_one_fail()
    {
        LayOutInstall();
        var ops = Ops();
        Assert.False((await ops.RenameAsync(Path.Combine(_root, "missing"), Path.Combine(ProgramFiles, "new"), default)).Succeeded);
        Assert.False((await ops.RenameAsync(InstallDir, InstallDir, default)).Succeeded);
        var target = Path.Combine(ProgramFiles, "atlassian-bitbucket-8.19.4");
        Assert.True((await ops.RenameAsync(InstallDir, target, default)).Succeeded);
        Assert.True(File.Exists(Path.Combine(target, "bin", "bitbucket.exe")));
    }

    [Fact]
    public async Task A_zip_distribution_extracts_with_NET_ZipFile_into_Program_Files()
    {
        LayOutInstall();
        var zip = Path.Combine(_root, "Downloads dir", "atlassian-bitbucket-8.19.4.zip");
        Directory.CreateDirectory(Path.GetDirectoryName(zip)!);
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            archive.CreateEntry("atlassian-bitbucket-8.19.4/bin/start-bitbucket.bat").Open().Dispose();
            archive.CreateEntry("atlassian-bitbucket-8.19.4/app/WEB-INF/lib/bitbucket-api-8.19.4.jar").Open().Dispose();
        }
        var dest = Path.Combine(ProgramFiles, ".bbzdu staging");
        var r = await Ops().ExtractAsync(zip, dest, default);
        Assert.True(r.Succeeded, r.StandardError);
        Assert.True(File.Exists(Path.Combine(dest, "atlassian-bitbucket-8.19.4", "app", "WEB-INF", "lib", "bitbucket-api-8.19.4.jar")));

        var broken = Path.Combine(_root, "Downloads dir", "broken.zip");
        File.WriteAllText(broken, "not a zip");
        Assert.False((await Ops().ExtractAsync(broken, dest, default)).Succeeded);
    }

    [Fact]
    public async Task Start_and_stop_go_through_the_service_and_Script_mode_is_refused()
    {
        LayOutInstall();
        var ops = Ops();
        var (mode, name, _) = await ops.DetectServiceAsync(default);
        Assert.Equal(NodeRunMode.WindowsService, mode);
        Assert.Equal("AtlassianBitbucket", name);
        var installation = new NodeInstallation { InstallDir = InstallDir, HomeDir = HomeDir, RunMode = mode, ServiceName = name, Platform = ShellPlatform.Windows };
        Assert.True((await ops.ServiceAsync(installation, start: false, default)).Succeeded);
        Assert.True((await ops.ServiceAsync(installation, start: true, default)).Succeeded);
        Assert.Equal(new[] { "Get-Service AtlassianBitbucket", "Stop-Service AtlassianBitbucket", "Start-Service AtlassianBitbucket" }, Calls());

        var refused = await Assert.ThrowsAsync<Core.BbException>(() => ops.RunBinScriptAsync(InstallDir, "start-bitbucket", Array.Empty<string>(), HomeDir, default));
        Assert.Equal("NodeWindowsServiceRequired", refused.ErrorId);
        Assert.Contains("service", refused.Message);
        Assert.Equal(3, Calls().Count);   // nothing was run for the refused start
    }

    [Fact]
    public async Task Node_facts_are_read_from_an_install_dir_under_Program_Files()
    {
        LayOutInstall();
        var ops = Ops();
        var lib = Path.Combine(InstallDir, "app", "WEB-INF", "lib");
        var (_, names, free) = await ops.FactsAsync(lib, ProgramFiles, default);
        Assert.Equal(new[] { "bitbucket-api-8.19.3.jar" }, names);
        Assert.True(free > 0);
        Assert.Equal(new[] { "bin", "app", "conf", "jre" }.OrderBy(x => x), (await ops.ListAsync(InstallDir, default)).OrderBy(x => x));
        var files = await ops.ReadFilesAsync(new[] { Path.Combine(InstallDir, "bin", "bitbucket.exe"), Path.Combine(InstallDir, "nope") }, default);
        Assert.Equal("x", files[0]);
        Assert.Null(files[1]);
        Assert.Equal(1, await ops.FileSizeAsync(Path.Combine(InstallDir, "bin", "bitbucket.exe"), default));
    }

    [Theory]
    [InlineData("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\AtlassianBitbucket\\ImagePath=\"C:\\Program Files\\Atlassian\\Bitbucket\\8.19.3\\bin\\bserv64.exe\" //RS//AtlassianBitbucket", @"C:\Program Files\Atlassian\Bitbucket\8.19.3")]
    [InlineData("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\AtlassianBitbucket\\ImagePath=D:\\Atlassian\\Bitbucket\\8.19.3\\bin\\bserv64.exe //RS//AtlassianBitbucket", @"D:\Atlassian\Bitbucket\8.19.3")]
    [InlineData("cmd.exe /c \"C:\\Program Files\\Atlassian\\Bitbucket\\8.19.3\\bin\\start-bitbucket.bat\" --no-search", @"C:\Program Files\Atlassian\Bitbucket\8.19.3")]
    [InlineData("ExecStart=/opt/atlassian/bitbucket/8.19.3/bin/start-bitbucket.sh --no-search", "/opt/atlassian/bitbucket/8.19.3")]
    public void The_install_dir_is_read_from_a_service_definition_whose_path_has_spaces(string definition, string expected) =>
        Assert.Equal(expected, NodeSteps.InstallDirIn(definition));

    /// <summary>
    /// The registry as Atlassian's installer leaves it (the AtlassianBitbucket service and its procrun parameters),
    /// served by Test-Path/Get-Item/Get-ChildItem/Set-ItemProperty functions for HKLM: paths only (anything else goes
    /// to the real cmdlets), with RegistryKey-like objects; Set-ItemProperty calls are recorded.
    /// </summary>
    private const string RegistryStubs = """
        param($from, $bbhome)
        $svc = 'HKLM:\SYSTEM\CurrentControlSet\Services\AtlassianBitbucket'
        $pr = 'HKLM:\SOFTWARE\WOW6432Node\Apache Software Foundation\Procrun 2.0\AtlassianBitbucket'
        $global:Reg = [ordered]@{
            $svc = @{ ImagePath = @('ExpandString', ('"' + $from + '\bin\bserv64.exe" //RS//AtlassianBitbucket')); DisplayName = @('String', 'Atlassian Bitbucket'); Start = @('DWord', 2) }
            $pr = @{}
            ($pr + '\Parameters\Java') = @{ Jvm = @('String', ($from + '\jre\bin\server\jvm.dll')); Classpath = @('String', ($from.ToUpper() + '\app\bootstrap.jar;' + $from + '\app\lib.jar')); Options = @('MultiString', [string[]]@('-Xmx1g', ('-Dbitbucket.home=' + $bbhome))) }
            ($pr + '\Parameters\Start') = @{ WorkingPath = @('String', ($from + '\bin')); Class = @('String', 'com.atlassian.bitbucket.internal.launcher.BitbucketServerLauncher') }
        }
        function global:New-FakeKey([string]$path) {
            $o = [pscustomobject]@{ Name = $path -replace '^HKLM:', 'HKEY_LOCAL_MACHINE'; PSPath = $path }
            $o | Add-Member ScriptMethod GetValueNames { @($global:Reg[$this.PSPath].Keys | Sort-Object) }
            $o | Add-Member ScriptMethod GetValue { param($n, $d, $opt) $global:Reg[$this.PSPath][$n][1] }
            $o | Add-Member ScriptMethod GetValueKind { param($n) $global:Reg[$this.PSPath][$n][0] }
            $o
        }
        function global:Test-Path { param([Parameter(Position = 0)][string]$Path, [string]$LiteralPath, $PathType)
            $p = if ($LiteralPath) { $LiteralPath } else { $Path }
            if ($p -like 'HKLM:*') { $global:BbCalls.Add("Test-Path $p"); return $global:Reg.Contains($p) }
            if ($PathType) { Microsoft.PowerShell.Management\Test-Path -LiteralPath $p -PathType $PathType } else { Microsoft.PowerShell.Management\Test-Path -LiteralPath $p } }
        function global:Get-Item { param([Parameter(Position = 0)][string]$Path, [string]$LiteralPath)
            $p = if ($LiteralPath) { $LiteralPath } else { $Path }
            if ($p -like 'HKLM:*') { New-FakeKey $p } else { Microsoft.PowerShell.Management\Get-Item -LiteralPath $p } }
        function global:Get-ChildItem { param([Parameter(Position = 0)][string]$Path, [string]$LiteralPath, [switch]$Recurse, [switch]$Force, [switch]$Name)
            $p = if ($LiteralPath) { $LiteralPath } else { $Path }
            if ($p -like 'HKLM:*') { foreach ($k in @($global:Reg.Keys)) { if ($k -like ($p + '\*')) { New-FakeKey $k } } }
            else { Microsoft.PowerShell.Management\Get-ChildItem -LiteralPath $p -Force:$Force -Name:$Name } }
        function global:Set-ItemProperty { param([string]$LiteralPath, [string]$Name, $Value)
            $global:BbCalls.Add("Set-ItemProperty $Name=$(@($Value) -join '|')"); $global:Reg[$LiteralPath][$Name] = @($global:Reg[$LiteralPath][$Name][0], $Value) }
        """;

    private void StubRegistry()
    {
        using var ps = PowerShell.Create(_runspace);
        ps.AddScript(RegistryStubs).AddArgument(InstallDir).AddArgument(HomeDir).Invoke();
        Assert.False(ps.HadErrors, string.Join("\n", ps.Streams.Error));
    }

    private string NewDir => Path.Combine(ProgramFiles, "atlassian-bitbucket-8.19.4");

    private NodeInstallation Service() => new()
    {
        InstallDir = InstallDir, HomeDir = HomeDir, RunMode = NodeRunMode.WindowsService, ServiceName = "AtlassianBitbucket", Platform = ShellPlatform.Windows,
    };

    [Fact]
    public async Task The_service_definition_is_read_from_the_service_and_procrun_keys()
    {
        LayOutInstall();
        StubRegistry();
        var text = await Ops().ReadServiceDefinitionAsync(Service(), default);
        Assert.NotNull(text);
        Assert.Contains(@"\Parameters\Java\Jvm=" + InstallDir, text);
        Assert.Contains($"\\Services\\AtlassianBitbucket\\ImagePath=\"{InstallDir}\\bin\\bserv64.exe\" //RS//AtlassianBitbucket", text);
        // (InstallDirIn reads drive-letter paths; the theory above covers it with C:\Program Files paths.)
    }

    [Fact]
    public async Task Repointing_changes_every_value_naming_the_old_dir_in_any_case_once_the_new_dir_has_what_they_name()
    {
        LayOutInstall();
        foreach (var f in new[] { @"bin/bserv64.exe", @"jre/bin/server/jvm.dll", @"app/bootstrap.jar", @"app/lib.jar" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(NewDir, f))!);
            File.WriteAllText(Path.Combine(NewDir, f), "x");
        }
        StubRegistry();
        var diff = await Ops().RepointServiceAsync(Service(), InstallDir, NewDir, default);
        var sets = Calls().Where(c => c.StartsWith("Set-ItemProperty", StringComparison.Ordinal)).ToList();
        Assert.Contains($"Set-ItemProperty ImagePath=\"{NewDir}\\bin\\bserv64.exe\" //RS//AtlassianBitbucket", sets);
        Assert.Contains($"Set-ItemProperty Jvm={NewDir}\\jre\\bin\\server\\jvm.dll", sets);
        Assert.Contains($"Set-ItemProperty Classpath={NewDir}\\app\\bootstrap.jar;{NewDir}\\app\\lib.jar", sets);   // the upper-cased old dir too
        Assert.Contains($"Set-ItemProperty WorkingPath={NewDir}\\bin", sets);
        Assert.Equal(4, sets.Count);   // the home in the JVM options and the other values are untouched
        Assert.Contains(NewDir, diff);
    }

    [Fact]
    public async Task Repointing_to_a_dir_without_the_JRE_the_service_uses_changes_nothing_and_says_what_is_missing()
    {
        LayOutInstall();
        Directory.CreateDirectory(Path.Combine(NewDir, "bin"));
        File.WriteAllText(Path.Combine(NewDir, "bin", "bserv64.exe"), "x");   // a zip distribution: no jre\
        StubRegistry();
        var ex = await Assert.ThrowsAsync<Core.BbException>(() => Ops().RepointServiceAsync(Service(), InstallDir, NewDir, default));
        Assert.Equal("NodeServiceRepointFailed", ex.ErrorId);
        Assert.Contains(@"Jvm names " + NewDir + @"\jre\bin\server\jvm.dll", ex.Message);
        Assert.DoesNotContain(Calls(), c => c.StartsWith("Set-ItemProperty", StringComparison.Ordinal));
    }
}
