using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Core.Tests.Upgrade.Journal;

/// <summary>
/// Azurite's blob service (the Azure Storage emulator, from npm) on a free loopback port with its own data folder,
/// one per test class. Installed by tools/Install-Azurite.ps1 into the ignored .tools-cache/azurite when missing.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    /// <summary>The emulator's well-known account and key (public, documented by Microsoft).</summary>
    public const string Account = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private ExternalProcess? _azurite;

    public int Port { get; private set; }
    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "bbzdu-azurite-" + Guid.NewGuid().ToString("N"));

    public Uri Container(string name) => new($"http://127.0.0.1:{Port}/{Account}/{name}");

    public static AzureStorageCredential SharedKey() => AzureStorageCredential.SharedKey(Account, Canary.Secure(AccountKey));

    public async Task<AzureBlobJournalStore> NewContainerAsync(AzureBlobJournalOptions? options = null)
    {
        var store = new AzureBlobJournalStore(Container("journal-" + Guid.NewGuid().ToString("N")[..12]), SharedKey(), options);
        await store.CreateContainerIfMissingAsync(CancellationToken.None);
        return store;
    }

    /// <summary>An account SAS (version 2019-12-12) for the blob service, signed with the emulator's key.</summary>
    public static string AccountSas(string permissions, DateTimeOffset expiry)
    {
        const string version = "2019-12-12";
        var se = expiry.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var toSign = string.Join("\n", Account, permissions, "b", "sco", "", se, "", "https,http", version) + "\n";
        using var hmac = new HMACSHA256(Convert.FromBase64String(AccountKey));
        var sig = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(toSign)));
        return $"sv={version}&ss=b&srt=sco&sp={permissions}&se={Uri.EscapeDataString(se)}&spr=https,http&sig={Uri.EscapeDataString(sig)}";
    }

    public async Task InitializeAsync()
    {
        var blob = await EnsureInstalledAsync();
        Directory.CreateDirectory(DataDirectory);
        Port = FreePort.Next();
        _azurite = ExternalProcess.Start(blob, new[]
        {
            "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(CultureInfo.InvariantCulture),
            "--location", DataDirectory, "--skipApiVersionCheck", "--loose",
        });
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Eventually.UntilAsync(async () =>
        {
            if (_azurite.HasExited) throw new InvalidOperationException("azurite-blob exited: " + _azurite.Output);
            using var r = await probe.GetAsync($"http://127.0.0.1:{Port}/{Account}?comp=list");
            return true; // any HTTP answer (403 without auth) means it listens
        }, TimeSpan.FromSeconds(60), $"Azurite listening on 127.0.0.1:{Port}");
    }

    private static async Task<string> EnsureInstalledAsync()
    {
        var root = RepoRoot();
        var bin = Path.Combine(root, ".tools-cache", "azurite", "node_modules", ".bin", OperatingSystem.IsWindows() ? "azurite-blob.cmd" : "azurite-blob");
        await InstallGate.WaitAsync();
        try
        {
            if (File.Exists(bin)) return bin;
            // The same script build.ps1 Test runs; needs node and npm on the PATH (it says so when they are missing).
            var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            var (code, output) = await ExternalProcess.RunAsync(dotnet,
                new[] { "pwsh", "-NoProfile", "-NonInteractive", "-File", Path.Combine(root, "tools", "Install-Azurite.ps1") },
                TimeSpan.FromMinutes(10), root);
            if (code != 0 || !File.Exists(bin))
                throw new InvalidOperationException($"Azurite is not installed and tools/Install-Azurite.ps1 failed ({code}): {output}");
            return bin;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "BitbucketZdu.sln"))) return d.FullName;
        throw new InvalidOperationException("The repository root (BitbucketZdu.sln) was not found above " + AppContext.BaseDirectory);
    }

    public async Task DisposeAsync()
    {
        if (_azurite is not null) await _azurite.DisposeAsync();
        try { Directory.Delete(DataDirectory, true); } catch (IOException) { }
    }
}
