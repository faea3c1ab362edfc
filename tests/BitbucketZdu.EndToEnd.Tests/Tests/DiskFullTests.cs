using System.Collections;
using System.Security.Cryptography;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.EndToEnd.Tests.Lab;
using BitbucketZdu.TestSupport;
using Xunit.Abstractions;

namespace BitbucketZdu.EndToEnd.Tests.Tests;

/// <summary>
/// node-1's install root is a small tmpfs, mostly taken by a file; the release archive holds 32 MB of zeros that compress
/// to a few KB, so the space checks (preflight and pre-staging) pass and the disk fills up during the extraction itself.
/// </summary>
public sealed class DiskFullTests
{
    private const string Node = "node-1";
    private readonly ITestOutputHelper _output;

    public DiskFullTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Disk_full_during_extraction_halts_before_any_node_changes_and_resume_after_freeing_space_completes()
    {
        string? mountPoint = null;
        try
        {
            await using var lab = await E2eLab.StartAsync(_output, new LabOptions
            {
                BeforeCluster = async root =>
                {
                    mountPoint = Path.Combine(root, Node);
                    await MountTmpfsAsync(mountPoint, "48m");
                },
            });
            var filler = Path.Combine(mountPoint!, "old-logs.bin");
            WriteZeros(filler, new DriveInfo(mountPoint!).AvailableFreeSpace - 8L * 1024 * 1024);
            var (archive, sha) = await PaddedArchiveAsync(lab, 32);
            var profile = lab.Profile();
            profile["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = sha };
            profile["MinFreeDiskGB"] = 0.004; // ~4 MB: node-1 has ~8 MB free, so preflight passes

            var run = await lab.InvokeRollingUpgradeAsync(profile: profile);
            lab.Print($"disk of {Node} full during extraction", run);

            var journal = await HaltedRuns.AssertHaltedAndServingAsync(lab, run, Node);
            _output.WriteLine("journal: " + HaltedRuns.Tail(journal));
            Assert.Equal("NodeDiskSpaceLow", run.ErrorId);
            Assert.Contains("filled up while extracting", run.ErrorMessage);
            Assert.Contains("Free some space", run.ErrorMessage);
            Assert.Contains(mountPoint!, run.ErrorMessage);
            Assert.Contains(journal, e => e.Kind == JournalKinds.StepFailed && e.Node == Node && e.Step!.Contains("pre-stage"));
            Assert.DoesNotContain(journal, e => e.Kind == JournalKinds.StepBegin && e.Step!.Contains("take-out"));
            // Nothing half-extracted or staged is left on the full disk; the old install is untouched and still runs.
            Assert.Equal(new[] { "atlassian-bitbucket-8.19.3", "home", "old-logs.bin" },
                Directory.EnumerateFileSystemEntries(mountPoint!).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            var cluster = await lab.ClusterStateAsync();
            Assert.False(cluster.UpgradeModeEnabled);
            Assert.True(lab.Load.Failed == 0, $"{lab.Load.Failed} user requests failed: {lab.Load.FailureSummary}");
            lab.Record("disk full during extraction (pre-staging, after preflight)",
                $"{Node} untouched on 8.19.3 and in rotation, the half-extracted dir removed; run halted before upgrade mode", run.ErrorId,
                $"next step: {run.Report?.NextStep}");

            File.Delete(filler);
            await HaltedRuns.ResumeToCompletionAsync(lab, "resume after freeing space", profile);
            lab.Record("disk full during extraction, space freed, then -Resume", "upgraded 3/3, STABLE", null);
        }
        finally
        {
            if (mountPoint is not null)
            {
                await ExternalProcess.RunAsync("umount", new[] { "-l", mountPoint }, TimeSpan.FromSeconds(20));
                try { Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(mountPoint)!)!, true); } catch (IOException) { }
            }
        }
    }

    /// <summary>A small real disk: needs root (CI runs as root). No fallback: without it this case proves nothing.</summary>
    private static async Task MountTmpfsAsync(string dir, string size)
    {
        Directory.CreateDirectory(dir);
        var (code, output) = await ExternalProcess.RunAsync("mount", new[] { "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir }, TimeSpan.FromSeconds(20));
        if (code != 0)
            throw new InvalidOperationException($"Cannot mount a {size} tmpfs on {dir} (exit {code}: {output.Trim()}). This case needs a real small disk: "
                + "run the end-to-end tests as root (CI does), or in a container started with --cap-add SYS_ADMIN.");
    }

    private static void WriteZeros(string path, long bytes)
    {
        var chunk = new byte[1024 * 1024];
        using var f = new FileStream(path, FileMode.CreateNew);
        for (long left = bytes; left > 0; left -= chunk.Length) f.Write(chunk, 0, (int)Math.Min(chunk.Length, left));
    }

    /// <summary>The lab's release archive with <paramref name="megabytes"/> MB of zeros added: a few KB compressed, that much extracted.</summary>
    private static async Task<(string Path, string Sha256)> PaddedArchiveAsync(E2eLab lab, int megabytes)
    {
        var work = Path.Combine(lab.Dir, "padded");
        var root = "atlassian-bitbucket-" + lab.Options.To;
        Directory.CreateDirectory(work);
        await Tar("-xzf", lab.ArchivePath, "-C", work);
        WriteZeros(Path.Combine(work, root, "padding.bin"), megabytes * 1024L * 1024);
        var dist = Path.Combine(lab.Dir, "dist-padded");
        Directory.CreateDirectory(dist);
        var archive = Path.Combine(dist, root + ".tar.gz");
        await Tar("-czf", archive, "-C", work, root);
        Directory.Delete(work, true);
        using var stream = File.OpenRead(archive);
        return (archive, Convert.ToHexStringLower(await SHA256.HashDataAsync(stream)));
    }

    private static async Task Tar(params string[] args)
    {
        var (code, output) = await ExternalProcess.RunAsync(RequiredTool.Find("tar"), args, TimeSpan.FromSeconds(60));
        if (code != 0) throw new InvalidOperationException("tar failed: " + output);
    }
}
