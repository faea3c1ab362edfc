using System.Management.Automation;
using System.Management.Automation.Language;
using System.Reflection;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Nodes;

namespace BitbucketZdu.Compat.Tests;

/// <summary>
/// Every PowerShell script the module can send to a node parses: the Windows node operations (every operation of
/// <see cref="NodeOps"/>, driven with paths that hold spaces and quotes) and the scripts of the PSSession shell.
/// The parser is PowerShell's own; a parse error here is a step that could never run on a Windows node.
/// </summary>
public class NodeScriptTests
{
    /// <summary>Records what a Windows node would be sent; answers every command with success and empty output.</summary>
    internal sealed class RecordingShell : INodeShell
    {
        public List<string> Commands { get; } = new();
        public string HostName => "win-node";
        public ShellPlatform Platform => ShellPlatform.Windows;
        public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
        {
            Commands.Add(ShellQuote.WithEnvironment(Platform, command, environment));
            return Task.FromResult(new ShellResult(0, command.Contains("ConvertTo-Json") ? "[]" : "", ""));
        }
        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(true);
        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult("");
        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) => Task.CompletedTask;
        public void Dispose() { }
    }

    private const string Install = @"C:\Program Files\Atlassian\Bitbucket\8.19.3";
    private const string Staged = @"C:\Program Files\Atlassian\Bitbucket\atlassian-bitbucket-8.19.4";
    private const string Home = @"C:\Atlassian\ApplicationData\Bitbucket";
    private const string Odd = @"C:\Program Files\O'Brien's $dir `x";

    private static NodeInstallation Installation() => new()
    {
        HostName = "win-node", Platform = ShellPlatform.Windows, InstallDir = Install, HomeDir = Home,
        RunMode = NodeRunMode.WindowsService, ServiceName = "AtlassianBitbucket",
        ServiceDefinition = @"HKLM:\SYSTEM\CurrentControlSet\Services\AtlassianBitbucket",
    };

    /// <summary>One call per operation of NodeOps; the test fails when an operation is added without a call here.</summary>
    private static readonly Dictionary<string, Func<NodeOps, Task>> Calls = new()
    {
        ["GetEnvironmentAsync"] = o => o.GetEnvironmentAsync("BITBUCKET_HOME", default),
        ["ReadFilesAsync"] = o => o.ReadFilesAsync(new[] { Install + @"\conf\bitbucket.properties", Odd + @"\a.txt" }, default),
        ["ListAsync"] = o => o.ListAsync(Install + @"\app\WEB-INF\lib", default),
        ["FactsAsync"] = o => o.FactsAsync(Install + @"\app\WEB-INF\lib", @"C:\Program Files\Atlassian\Bitbucket", default),
        ["FreeBytesAsync"] = o => o.FreeBytesAsync(Odd, default),
        ["FileSizeAsync"] = o => o.FileSizeAsync(Odd + @"\atlassian-bitbucket-8.19.4.zip", default),
        ["Sha256Async"] = o => o.Sha256Async(Odd + @"\atlassian-bitbucket-8.19.4.zip", default),
        ["IsProcessAliveAsync"] = o => o.IsProcessAliveAsync(4242, default),
        ["KillAsync"] = o => o.KillAsync(4242, default),
        ["MakeDirAsync"] = o => o.MakeDirAsync(Odd, default),
        ["RemoveTreeAsync"] = async o => { await o.RemoveTreeAsync(Odd, default); await o.RemoveTreeAsync(Odd, Staged, default); },
        ["RenameAsync"] = o => o.RenameAsync(Odd, Staged, default),
        ["ExtractAsync"] = async o => { await o.ExtractAsync(Odd + @"\a.zip", Odd + @"\x", default); await o.ExtractAsync(Odd + @"\a.tar.gz", Odd + @"\x", default); },
        ["FetchAsync"] = o => o.FetchAsync(new Uri("https://www.atlassian.com/software/stash/downloads/binary/atlassian-bitbucket-8.19.4.zip"), Odd + @"\a.zip", default),
        ["RunBinScriptAsync"] = async o => await Assert.ThrowsAsync<Core.BbException>(() => o.RunBinScriptAsync(Install, "start-bitbucket", new[] { "--no-search" }, Home, default)),
        ["ServiceAsync"] = async o => { await o.ServiceAsync(Installation(), true, default); await o.ServiceAsync(Installation(), false, default); },
        ["DetectServiceAsync"] = o => o.DetectServiceAsync(default),
        ["RepointServiceAsync"] = o => o.RepointServiceAsync(Installation(), Install, Staged, default),
        ["ReadServiceDefinitionAsync"] = o => o.ReadServiceDefinitionAsync(Installation(), default),
        // The one-round-trip forms: POSIX scripts; on Windows the stop and start answer null (step by step) and the
        // marker is read and written with the operations above.
        ["StopAndWaitAsync"] = async o => Assert.Null(await o.StopAndWaitAsync(Installation(), Install, Home + @"\bitbucket.pid", TimeSpan.FromSeconds(5), default)),
        ["StartInOneTripAsync"] = async o => Assert.Null(await o.StartInOneTripAsync(Installation(), Install, Array.Empty<string>(), Home + @"\bitbucket.pid", Home + @"\bbzdu-node.state", "installDir=" + Odd, default)),
        ["SetMarkerValueAsync"] = o => o.SetMarkerValueAsync(Odd + @"\bbzdu-node.state", "installDir", Staged, default),
    };

    internal static async Task<List<string>> WindowsOpsScripts()
    {
        var shell = new RecordingShell();
        var ops = NodeOps.For(shell, new NodeStepOptions());
        Assert.IsType<WindowsOps>(ops);
        foreach (var call in Calls.Values) await call(ops);
        return shell.Commands;
    }

    private static IEnumerable<string> ParseErrors(string script)
    {
        Parser.ParseInput(script, out _, out var errors);
        return errors.Select(e => $"{e.ErrorId} at {e.Extent.StartLineNumber}:{e.Extent.StartColumnNumber} '{e.Extent.Text}': {e.Message}");
    }

    [Fact]
    public void Every_operation_of_NodeOps_is_driven_by_this_test()
    {
        var operations = typeof(NodeOps).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => m.IsVirtual && !m.IsSpecialName).Select(m => m.Name).Distinct()
            .Where(n => n is not ("Combine" or "Parent"));   // pure path functions, nothing is sent
        Assert.Empty(operations.Except(Calls.Keys));
    }

    [Fact]
    public async Task Every_Windows_node_command_parses()
    {
        var scripts = await WindowsOpsScripts();
        Assert.True(scripts.Count >= Calls.Count, $"only {scripts.Count} commands recorded");
        var errors = scripts.SelectMany(s => ParseErrors(s).Select(e => e + "\n  in: " + s)).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public void Every_script_of_the_PSSession_shell_parses()
    {
        Assert.NotEmpty(PSSessionShell.Scripts);
        var errors = PSSessionShell.Scripts.SelectMany(s => ParseErrors(s).Select(e => e + "\n  in: " + s)).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public void The_parser_check_is_not_vacuous_it_finds_a_piped_foreach_statement()
    {
        // The shape of the service-definition read before the fix.
        Assert.Contains(ParseErrors("foreach ($k in @(1)) { $k } | ForEach-Object { $_ }"), e => e.StartsWith("EmptyPipeElement", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Paths_with_spaces_and_quotes_reach_the_node_as_one_literal_argument()
    {
        var scripts = await WindowsOpsScripts();
        var mkdir = scripts.Single(s => s.StartsWith("New-Item -ItemType Directory", StringComparison.Ordinal) && !s.Contains(';'));
        Parser.ParseInput(mkdir, out _, out _).Find(a => a is CommandAst, true);
        var ast = Parser.ParseInput(mkdir, out _, out _);
        var path = ast.FindAll(a => a is StringConstantExpressionAst { StringConstantType: StringConstantType.SingleQuoted }, true)
            .Cast<StringConstantExpressionAst>().Single();
        Assert.Equal(Odd, path.Value);
    }
}
