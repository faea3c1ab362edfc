using System;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
        /// <summary>
        /// Puts the archive on the node (copy or fetch), verifies its SHA-256 and extracts it into a new dir next to the
        /// current one (via a temp name and a rename). An existing complete dir of that version is "already done"; any
        /// other existing dir is refused; short disk space is refused before anything is written.
        /// </summary>
        public async Task<NodeStepResult> PreStageAsync(NodeInstallation installation, NodeDistribution distribution, CancellationToken cancellationToken = default)
        {
            var ct = cancellationToken;
            var sw = Stopwatch.StartNew();
            var fileName = distribution.FileName;
            var nameMatch = ArchiveName.Match(fileName);
            if (!nameMatch.Success)
                throw new BbException("NodeArchiveNameInvalid", BbErrorCategory.InvalidArgument,
                    $"'{fileName}' is not a Bitbucket distribution name (atlassian-bitbucket-X.Y.Z.tar.gz or .zip).", Host);
            var version = nameMatch.Groups["v"].Value;
            var rootName = "atlassian-bitbucket-" + version;
            var parent = _ops.Parent(installation.InstallDir);
            var target = _ops.Combine(parent, rootName);
            var result = new NodeStepResult(Host, NodeStep.PreStage) { InstallDir = installation.InstallDir, NewInstallDir = target, PreviousInstallDir = installation.InstallDir, Version = version };

            if (string.Equals(target, installation.InstallDir.TrimEnd('/', '\\'), StringComparison.Ordinal))
            {
                result.Summary = $"{installation.InstallDir} already is version {version}";
                result.Duration = sw.Elapsed;
                return result;
            }
            if (await _shell.PathExistsAsync(target, ct).ConfigureAwait(false))
            {
                var existing = await ReadMarkerAsync(target, ct).ConfigureAwait(false);
                if (existing["version"] == version && await VersionOfAsync(target, ct).ConfigureAwait(false) == version)
                {
                    result.Summary = $"already staged in {target}";
                    result.Duration = sw.Elapsed;
                    return result;
                }
                throw new BbException("NodeTargetDirExists", BbErrorCategory.ResourceExists,
                    $"{target} already exists on {Host} and was not staged by this module for {version}; it is never overwritten. Move it away or remove it, then run again.", Host);
            }

            var staging = _ops.Combine(parent, ".bbzdu-staging");
            var staged = _ops.Combine(staging, fileName);
            var extractDir = _ops.Combine(parent, ".bbzdu-extract-" + version);
            try
            {
                var expected = await ExpectedSha256Async(distribution, staging, ct).ConfigureAwait(false);
                var size = distribution.LocalPath is null ? 0 : new System.IO.FileInfo(distribution.LocalPath).Length;

                // An archive fully staged before a crash is reused (copies are atomic, so a complete file is whole).
                var reuse = false;
                if (await _shell.PathExistsAsync(staged, ct).ConfigureAwait(false))
                {
                    reuse = await _ops.Sha256Async(staged, ct).ConfigureAwait(false) == expected;
                    if (reuse) result.Changes.Add($"reused {staged} from an earlier run");
                }
                await EnsureSpaceAsync(parent, reuse ? (long)(size * (Options.SpaceFactor - 1)) : (long)(size * Options.SpaceFactor), ct).ConfigureAwait(false);

                if (!reuse)
                {
                    await _ops.MakeDirAsync(staging, ct).ConfigureAwait(false);
                    Report($"Copying {fileName} to {Host}", 10);
                    if (distribution.LocalPath is not null)
                    {
                        await _shell.CopyFileToAsync(distribution.LocalPath, staged, ct).ConfigureAwait(false);
                        result.Changes.Add($"copied {fileName} ({size:N0} bytes) to {staging}");
                    }
                    else
                    {
                        var part = staged + ".part";
                        var fetched = await _ops.FetchAsync(distribution.Uri!, part, ct).ConfigureAwait(false);
                        if (!fetched.Succeeded)
                            throw new BbException("NodeDownloadFailed", BbErrorCategory.ConnectionError,
                                $"{Host} could not download {distribution.Uri}: {NodeOps.Tail(fetched.StandardError, 300)}", Host);
                        size = await _ops.FileSizeAsync(part, ct).ConfigureAwait(false) ?? 0;
                        result.Changes.Add($"downloaded {distribution.Uri} ({size:N0} bytes) to {staging}");
                        await EnsureSpaceAsync(parent, (long)(size * (Options.SpaceFactor - 1)), ct).ConfigureAwait(false);
                        await _ops.RemoveTreeAsync(staged, ct).ConfigureAwait(false);
                        var moved = await _ops.RenameAsync(part, staged, ct).ConfigureAwait(false);
                        if (!moved.Succeeded) throw Failed("move the archive into place", moved);
                    }
                }

                Report($"Verifying the SHA-256 of {fileName}", 40);
                var actual = await _ops.Sha256Async(staged, ct).ConfigureAwait(false);
                if (actual != expected)
                    throw new BbException("NodeChecksumMismatch", BbErrorCategory.InvalidData,
                        $"The SHA-256 of {fileName} on {Host} is {actual}, expected {expected}. The archive was damaged in transit or is not the published one; nothing was extracted. Download it again.", Host);

                // Extracted under a temp name, renamed when complete: a crash never leaves a dir that looks complete.
                Report($"Extracting {fileName}", 60);
                var extracted = await _ops.ExtractAsync(staged, extractDir, ct).ConfigureAwait(false);
                if (!extracted.Succeeded)
                {
                    var why = extracted.StandardError + extracted.StandardOutput;
                    if (why.IndexOf("No space left", StringComparison.OrdinalIgnoreCase) >= 0 || why.IndexOf("not enough space", StringComparison.OrdinalIgnoreCase) >= 0)
                        throw new BbException("NodeDiskSpaceLow", BbErrorCategory.LimitsExceeded,
                            $"The disk holding {parent} on {Host} filled up while extracting {fileName}: {NodeOps.Tail(why, 300)} Free some space and run again.", Host);
                    throw new BbException("NodeArchiveCorrupt", BbErrorCategory.InvalidData,
                        $"{fileName} could not be extracted on {Host}: {NodeOps.Tail(why, 300)}", Host);
                }
                var newRoot = _ops.Combine(extractDir, rootName);
                if (await VersionOfAsync(newRoot, ct, jarOnly: true).ConfigureAwait(false) != version)
                    throw new BbException("NodeArchiveCorrupt", BbErrorCategory.InvalidData,
                        $"{fileName} does not hold {rootName}/app/WEB-INF/lib/bitbucket-api-{version}.jar; it is not a Bitbucket {version} distribution.", Host);

                var marker = new NodeMarker { ["version"] = version, ["sha256"] = expected, ["previous"] = installation.InstallDir, ["stagedAt"] = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture) };
                await _shell.WriteTextAsync(_ops.Combine(newRoot, NodeMarker.InstallMarkerName), marker.ToString(), ct).ConfigureAwait(false);
                var renamed = await _ops.RenameAsync(newRoot, target, ct).ConfigureAwait(false);
                if (!renamed.Succeeded) throw Failed($"rename the extracted dir to {target}", renamed);
                result.Changes.Add($"extracted {fileName} into {target}");
            }
            finally
            {
                // Nothing half-done stays behind: the temp extraction and the staged archive go either way
                // (only a crash leaves them, and the next run cleans or reuses them).
                await _ops.RemoveTreeAsync(extractDir, staging, CancellationToken.None).ConfigureAwait(false);
                Report("Done", 100, completed: true);
            }
            result.Changed = true;
            result.Summary = $"staged {version} in {target}";
            result.Duration = sw.Elapsed;
            return result;
        }

        private async Task<string> ExpectedSha256Async(NodeDistribution distribution, string staging, CancellationToken ct)
        {
            string? text = distribution.Sha256;
            if (text is null && distribution.LocalPath is not null && System.IO.File.Exists(distribution.LocalPath + ".sha256"))
                text = System.IO.File.ReadAllText(distribution.LocalPath + ".sha256");
            if (text is null && distribution.Uri is not null)
            {
                await _ops.MakeDirAsync(staging, ct).ConfigureAwait(false);
                var shaFile = _ops.Combine(staging, distribution.FileName + ".sha256");
                var r = await _ops.FetchAsync(new Uri(distribution.Uri.AbsoluteUri + ".sha256"), shaFile, ct).ConfigureAwait(false);
                if (r.Succeeded) text = await _shell.ReadTextAsync(shaFile, ct).ConfigureAwait(false);
            }
            var hex = text?.Trim().Split(new[] { ' ', '\t', '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.ToLowerInvariant();
            if (hex is null)
                throw new BbException("NodeChecksumMissing", BbErrorCategory.InvalidArgument,
                    $"No SHA-256 for {distribution.FileName}: pass -Sha256, or put {distribution.FileName}.sha256 beside the archive.", Host);
            if (!Regex.IsMatch(hex, "^[0-9a-f]{64}$"))
                throw new BbException("NodeChecksumInvalid", BbErrorCategory.InvalidArgument, $"'{hex}' is not a SHA-256 (64 hex digits).", Host);
            return hex;
        }

        private async Task EnsureSpaceAsync(string parent, long needed, CancellationToken ct)
        {
            var free = await _ops.FreeBytesAsync(parent, ct).ConfigureAwait(false);
            var want = needed + Options.MinimumFreeBytes;
            if (free is long f && f < want)
                throw new BbException("NodeDiskSpaceLow", BbErrorCategory.LimitsExceeded,
                    $"Only {Mb(f)} free on the disk holding {parent} on {Host}; pre-staging needs {Mb(want)} (archive and extraction plus {Mb(Options.MinimumFreeBytes)} reserve). Free some space or lower -MinimumFreeSpace.", Host);
        }

        private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.#", CultureInfo.InvariantCulture) + " MB";
    }
}
