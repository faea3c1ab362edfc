using System.Reflection;
using BitbucketZdu.Loading;

namespace BitbucketZdu.Compat.Tests;

/// <summary>
/// Every reference of every assembly in the module folder resolves on the runtimes the module claims, read from
/// metadata against each runtime's reference set. Nothing here runs on Windows; it fails if a dependency bump
/// brings a reference that Windows PowerShell 5.1 (.NET Framework 4.7.2, no binding redirects) or PowerShell 7.4
/// (.NET 8) cannot bind.
/// </summary>
public class BindingClosureTests
{
    // Supplied by every PowerShell host, whatever the module ships: PowerShellStandard's reference is 3.0.0.0,
    // Windows PowerShell 5.1 has 3.0.0.0 in the GAC and PowerShell 7 binds it upwards.
    private static readonly Dictionary<string, Version> HostSupplied = new(StringComparer.OrdinalIgnoreCase)
    {
        ["System.Management.Automation"] = new Version(3, 0, 0, 0),
    };

    /// <summary>The shipped set as the initializer reads it on Windows PowerShell.</summary>
    internal static Dictionary<string, (AssemblyName Name, string Path)> Shipped()
    {
        var shipped = ModuleInitializer.ReadFolder(ModuleFolder.Path_);
        Assert.Equal(ModuleFolder.Files.Length, shipped.Count);
        return shipped;
    }

    /// <summary>
    /// .NET Framework: a framework assembly binds when the in-box set has it at the version asked or higher
    /// (framework unification); an assembly of the module folder binds when its version is exactly the one asked, or
    /// else only through the module's AssemblyResolve handler, so only if <see cref="BindingPolicy"/> accepts it.
    /// </summary>
    internal static List<string> Net472Failures(bool withResolver)
    {
        var inbox = ModuleFolder.ReferenceSet(ModuleFolder.Net472Ref);
        var shipped = Shipped();
        var failures = new List<string>();
        foreach (var file in ModuleFolder.Files)
        {
            var (name, refs) = ModuleFolder.Read(file);
            foreach (var r in refs)
            {
                if (inbox.TryGetValue(r.Name!, out var v) && v >= r.Version!) continue;
                if (HostSupplied.TryGetValue(r.Name!, out var h) && h >= r.Version!) continue;
                if (shipped.TryGetValue(r.Name!, out var s))
                {
                    if (s.Name.Version == r.Version) continue;
                    if (withResolver && ModuleInitializer.Choose(shipped, r) is not null) continue;
                    failures.Add($"{name.Name} -> {r.Name} {r.Version} ({s.Name.Version} ships)");
                    continue;
                }
                failures.Add($"{name.Name} -> {r.Name} {r.Version} (neither in .NET Framework 4.7.2 nor in the module folder)");
            }
        }
        return failures;
    }

    /// <summary>
    /// .NET (PowerShell 7): an assembly the runtime ships is always taken from the runtime, so a reference to it must
    /// not ask for more than the runtime's version; any other reference must be shipped at that version or higher
    /// (.NET binds upwards).
    /// </summary>
    internal static List<string> NetCoreFailures(string refPack)
    {
        var runtime = ModuleFolder.ReferenceSet(refPack);
        var shipped = Shipped();
        var failures = new List<string>();
        foreach (var file in ModuleFolder.Files)
        {
            var (name, refs) = ModuleFolder.Read(file);
            foreach (var r in refs)
            {
                if (runtime.TryGetValue(r.Name!, out var v))
                {
                    if (v < r.Version!) failures.Add($"{name.Name} -> {r.Name} {r.Version} (the runtime has {v})");
                    continue;
                }
                if (HostSupplied.TryGetValue(r.Name!, out var h) && h >= r.Version!) continue;
                if (shipped.TryGetValue(r.Name!, out var s) && s.Name.Version >= r.Version!) continue;
                failures.Add($"{name.Name} -> {r.Name} {r.Version} (neither in the runtime nor shipped at that version)");
            }
        }
        return failures;
    }

    [Fact]
    public void Every_reference_binds_on_NET_Framework_472_through_the_module_resolver()
    {
        var failures = Net472Failures(withResolver: true);
        Assert.True(failures.Count == 0, "Windows PowerShell 5.1 cannot bind:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void Without_the_resolver_NET_Framework_could_not_bind_the_dependencies_own_references()
    {
        // The check is not vacuous: the module folder as built needs the resolver (the nine references).
        var failures = Net472Failures(withResolver: false);
        Assert.Contains(failures, f => f.StartsWith("System.Memory -> System.Buffers 4.0.2.0", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Polly.Core -> Microsoft.Bcl.AsyncInterfaces", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_reference_binds_on_NET_8_the_runtime_of_PowerShell_74()
    {
        var failures = NetCoreFailures(ModuleFolder.Net8Ref);
        Assert.True(failures.Count == 0, "PowerShell 7.4 (.NET 8) cannot bind:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void PowerShell_72_on_NET_6_cannot_bind_System_Text_Json_8_so_the_floor_is_74()
    {
        var failures = NetCoreFailures(ModuleFolder.Net6Ref);
        Assert.Contains(failures, f => f.Contains("-> System.Text.Json 8.0.0.0 (the runtime has 6.0.0.0)", StringComparison.Ordinal));
    }

    [Fact]
    public void The_policy_answers_only_for_the_same_assembly_at_the_version_asked_or_higher()
    {
        var shipped = new AssemblyName("System.Buffers, Version=4.0.3.0, Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51");
        Assert.True(BindingPolicy.Accepts(new AssemblyName("System.Buffers, Version=4.0.2.0, Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51"), shipped));
        Assert.True(BindingPolicy.Accepts(new AssemblyName("System.Buffers, Version=4.0.3.0, Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51"), shipped));
        Assert.False(BindingPolicy.Accepts(new AssemblyName("System.Buffers, Version=4.0.4.0, Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51"), shipped));
        Assert.False(BindingPolicy.Accepts(new AssemblyName("System.Buffers, Version=4.0.2.0, Culture=neutral, PublicKeyToken=b03f5f7f11d50a3a"), shipped));
        Assert.False(BindingPolicy.Accepts(new AssemblyName("System.Memory, Version=4.0.1.0, Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51"), shipped));
        Assert.False(BindingPolicy.Accepts(new AssemblyName("System.Buffers.resources, Version=4.0.2.0, Culture=de, PublicKeyToken=cc7b13ffcd2ddd51"), shipped));
    }

    [Theory]
    [InlineData(0xC0, 0x3CC0)]         // Ssl3 | Tls (Windows PowerShell's default on older hosts): 1.2 and 1.3 added
    [InlineData(0xC00, 0x3C00)]        // Tls12 already: 1.3 added, 1.2 kept
    [InlineData(0, 0)]                 // SystemDefault: the operating system chooses, left as is
    public void TLS_12_and_13_are_added_without_removing_what_the_host_allows(int current, int expected) =>
        Assert.Equal(expected, BindingPolicy.WithModernTls(current, tls12: 0xC00, tls13: 0x3000));

    [Fact]
    public void Without_TLS_13_in_the_runtime_only_12_is_added() =>
        Assert.Equal(0xCC0, BindingPolicy.WithModernTls(0xC0, tls12: 0xC00, tls13: null));
}

public class RuntimeFloorTests
{
    [Theory]
    [InlineData(false, "6.0.36", false)]   // PowerShell 7.2
    [InlineData(false, "7.0.20", false)]   // PowerShell 7.3
    [InlineData(false, "8.0.11", true)]    // PowerShell 7.4
    [InlineData(false, "10.0.0", true)]    // PowerShell 7.6
    [InlineData(true, "4.0.30319.42000", true)]   // Windows PowerShell 5.1
    public void Import_refuses_PowerShell_7_below_74_and_accepts_51(bool netFramework, string runtime, bool accepted)
    {
        var error = BitbucketZdu.Loading.ModuleInitializer.RuntimeFloorError(netFramework, Version.Parse(runtime), "7.2.24");
        Assert.Equal(accepted, error is null);
        if (error is not null) Assert.Contains("PowerShell 7.4 or later", error);
    }

    [Fact]
    public void This_test_host_passes_the_floor() =>
        Assert.Null(BitbucketZdu.Loading.ModuleInitializer.RuntimeFloorError(BitbucketZdu.Loading.ModuleInitializer.IsNetFramework, Environment.Version, null));
}
