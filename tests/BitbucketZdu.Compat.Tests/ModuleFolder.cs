using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace BitbucketZdu.Compat.Tests;

/// <summary>The module's assemblies as build.ps1 ships them, and the reference sets they are checked against.</summary>
internal static class ModuleFolder
{
    private static string Meta(string key) =>
        typeof(ModuleFolder).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "BitbucketZdu.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("BitbucketZdu.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>
    /// The cmdlet project's netstandard2.0 output: build.ps1 copies every dll of it except System.Management.Automation
    /// (which is not there: the host supplies it) into out/BitbucketZdu/&lt;version&gt;/, so this is the shipped set.
    /// </summary>
    public static string Path_ => Path.Combine(RepoRoot, "src", "BitbucketZdu", "bin", Meta("Configuration"), "netstandard2.0");

    public static string[] Files
    {
        get
        {
            var files = Directory.GetFiles(Path_, "*.dll").Where(f => Path.GetFileName(f) != "System.Management.Automation.dll").ToArray();
            Assert.Contains(files, f => Path.GetFileName(f) == "BitbucketZdu.dll");
            return files;
        }
    }

    public static string Net472Ref => Existing(Meta("Net472Ref"));
    public static string Net8Ref => Existing(Meta("Net8Ref"));
    public static string Net6Ref => Existing(Meta("Net6Ref"));

    private static string Existing(string dir) =>
        Directory.Exists(dir) ? dir : throw new DirectoryNotFoundException($"Reference set {dir} is missing: restore tests/BitbucketZdu.Compat.Tests (its PackageDownload items fetch it).");

    /// <summary>Name and references of one assembly, read from metadata (nothing is loaded).</summary>
    public static (AssemblyName Name, AssemblyName[] References) Read(string file)
    {
        using var stream = File.OpenRead(file);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var name = md.GetAssemblyDefinition().GetAssemblyName();
        var refs = md.AssemblyReferences.Select(h => md.GetAssemblyReference(h).GetAssemblyName()).ToArray();
        return (name, refs);
    }

    /// <summary>Simple name → version of every assembly in a reference set (its top folder and Facades/).</summary>
    public static Dictionary<string, Version> ReferenceSet(string dir)
    {
        var set = new Dictionary<string, Version>(StringComparer.OrdinalIgnoreCase);
        var dirs = new[] { dir, Path.Combine(dir, "Facades") }.Where(Directory.Exists);
        foreach (var file in dirs.SelectMany(d => Directory.GetFiles(d, "*.dll")))
        {
            try
            {
                var n = Read(file).Name;
                set[n.Name!] = n.Version!;
            }
            catch (Exception e) when (e is BadImageFormatException or InvalidOperationException) { }   // native or a module without an assembly
        }
        return set;
    }
}
