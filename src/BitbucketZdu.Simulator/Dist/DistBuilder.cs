using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using BitbucketZdu.Simulator.Cluster;

namespace BitbucketZdu.Simulator.Dist;

/// <summary>
/// Builds a Bitbucket-like release archive for any version: <c>atlassian-bitbucket-X.Y.Z.tar.gz</c> and/or <c>.zip</c>
/// with a sha256sum file beside each. The root folder <c>atlassian-bitbucket-X.Y.Z/</c> holds bin/ (scripts with
/// their Unix modes), app/WEB-INF/lib/bitbucket-api-X.Y.Z.jar (the version marker), conf/ and a README.
/// </summary>
public static class DistBuilder
{
    private static readonly DateTimeOffset Stamp = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public sealed record Entry(string Path, byte[] Content, UnixFileMode Mode);

    /// <summary>Writes the archives; returns the paths of the archives written (each with its .sha256 beside it).</summary>
    public static IReadOnlyList<string> Build(SimVersion version, string outputDir, string format, RuntimeLocation runtime)
    {
        if (format is not ("tar.gz" or "zip" or "both"))
            throw new ArgumentException($"Unknown format '{format}': use tar.gz, zip or both.");
        Directory.CreateDirectory(outputDir);
        var entries = Entries(version, runtime);
        var written = new List<string>();
        var baseName = "atlassian-bitbucket-" + version;
        if (format is "tar.gz" or "both")
            written.Add(Write(Path.Combine(outputDir, baseName + ".tar.gz"), s => WriteTarGz(s, entries, baseName)));
        if (format is "zip" or "both")
            written.Add(Write(Path.Combine(outputDir, baseName + ".zip"), s => WriteZip(s, entries, baseName)));
        return written;
    }

    public static IReadOnlyList<Entry> Entries(SimVersion version, RuntimeLocation runtime)
    {
        const UnixFileMode exec = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        const UnixFileMode file = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        Entry Sh(string name, string text) => new("bin/" + name, Utf8(text), exec);
        Entry Bat(string name, string text) => new("bin/" + name, Utf8(text.ReplaceLineEndings("\r\n")), file);
        return new[]
        {
            Sh("start-bitbucket.sh", Scripts.StartBitbucket),
            Sh("stop-bitbucket.sh", Scripts.StopBitbucket),
            Sh("_start-webapp.sh", Scripts.StartWebapp),
            Sh("set-bitbucket-home.sh", Scripts.SetBitbucketHome),
            Sh("set-bitbucket-user.sh", Scripts.SetBitbucketUser),
            Sh("set-jre-home.sh", Scripts.SetJreHome),
            Sh("bbsim-runtime.sh", Scripts.Runtime(runtime.Dotnet, runtime.Dll)),
            Bat("start-bitbucket.bat", Scripts.StartBitbucketBat),
            Bat("stop-bitbucket.bat", Scripts.StopBitbucketBat),
            Bat("_start-webapp.bat", Scripts.StartWebappBat),
            Bat("set-bitbucket-home.bat", Scripts.SetBitbucketHomeBat),
            Bat("set-bitbucket-user.bat", Scripts.SetBitbucketUserBat),
            Bat("set-jre-home.bat", Scripts.SetJreHomeBat),
            Bat("bbsim-runtime.bat", Scripts.RuntimeBat(runtime.Dotnet, runtime.Dll)),
            new("app/WEB-INF/lib/bitbucket-api-" + version + ".jar", Jar(version), file),
            new("conf/server.xml", Utf8("<!-- Simulated: Bitbucket 5+ configures ports in $BITBUCKET_HOME/shared/bitbucket.properties (here $BITBUCKET_HOME/bitbucket.properties). -->\n"), file),
            new("README.txt", Utf8($"Atlassian Bitbucket {version} (simulated by bbsim; not the real product).\nStart: bin/start-bitbucket.sh --no-search   Stop: bin/stop-bitbucket.sh\n"), file),
        };
    }

    private static string Write(string path, Action<Stream> write)
    {
        using (var fs = File.Create(path)) write(fs);
        using var read = File.OpenRead(path);
        var hex = Convert.ToHexStringLower(SHA256.HashData(read));
        File.WriteAllText(path + ".sha256", $"{hex}  {Path.GetFileName(path)}\n");
        return path;
    }

    private static void WriteTarGz(Stream output, IReadOnlyList<Entry> entries, string root)
    {
        using var gz = new GZipStream(output, CompressionLevel.SmallestSize);
        using var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: false);
        const UnixFileMode dirMode = (UnixFileMode)0b111_101_101;
        foreach (var dir in Directories(entries).Prepend(""))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, root + "/" + dir) { Mode = dirMode, ModificationTime = Stamp });
        foreach (var e in entries)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, root + "/" + e.Path)
            {
                Mode = e.Mode,
                ModificationTime = Stamp,
                DataStream = new MemoryStream(e.Content),
            });
    }

    private static void WriteZip(Stream output, IReadOnlyList<Entry> entries, string root)
    {
        using var zip = new ZipArchive(output, ZipArchiveMode.Create);
        foreach (var dir in Directories(entries).Prepend(""))
            zip.CreateEntry(root + "/" + dir).ExternalAttributes = (0x4000 | 0b111_101_101) << 16;
        foreach (var e in entries)
        {
            var z = zip.CreateEntry(root + "/" + e.Path, CompressionLevel.SmallestSize);
            z.LastWriteTime = Stamp;
            z.ExternalAttributes = (0x8000 | (int)e.Mode) << 16;
            using var s = z.Open();
            s.Write(e.Content);
        }
    }

    private static IEnumerable<string> Directories(IEnumerable<Entry> entries) =>
        entries.SelectMany(e =>
        {
            var parts = e.Path.Split('/');
            return Enumerable.Range(1, parts.Length - 1).Select(i => string.Join('/', parts.Take(i)) + "/");
        }).Distinct().OrderBy(d => d, StringComparer.Ordinal);

    /// <summary>A tiny real jar (zip) whose manifest names the version.</summary>
    private static byte[] Jar(SimVersion version)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            var e = zip.CreateEntry("META-INF/MANIFEST.MF");
            e.LastWriteTime = Stamp;
            using var w = new StreamWriter(e.Open(), new UTF8Encoding(false));
            w.Write($"Manifest-Version: 1.0\r\nImplementation-Title: bitbucket-api\r\nImplementation-Version: {version}\r\nImplementation-Vendor: bbsim (simulated)\r\n\r\n");
        }
        return ms.ToArray();
    }

    private static byte[] Utf8(string s) => new UTF8Encoding(false).GetBytes(s);
}

/// <summary>How a simulated install finds the simulator: the dotnet host and bbsim.dll (baked into bin/bbsim-runtime.sh).</summary>
public sealed record RuntimeLocation(string Dotnet, string Dll)
{
    public static RuntimeLocation Current()
    {
        var dll = typeof(DistBuilder).Assembly.Location;
        var process = Environment.ProcessPath ?? "dotnet";
        var dotnet = Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? process
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? FindOnPath("dotnet") ?? "dotnet";
        return new RuntimeLocation(dotnet, dll);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
