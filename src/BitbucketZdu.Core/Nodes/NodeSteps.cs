using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>
    /// The per-node upgrade steps over any <see cref="INodeShell"/>: discover, stop, pre-stage, configure, start and
    /// roll back. Each step is idempotent (a re-run finds finished work and moves on), never touches the old install
    /// dir, and returns what it changed. Commands come from <see cref="NodeOps"/> for the shell's platform.
    /// </summary>
    public sealed class NodeSteps
    {
        private static readonly Regex ArchiveName = new Regex(@"^atlassian-bitbucket-(?<v>\d+\.\d+\.\d+)\.(?<kind>tar\.gz|tgz|zip)$", RegexOptions.IgnoreCase);
        private static int _activityIds = ProgressActivities.NodeStepsBase;

        private readonly INodeShell _shell;
        private readonly NodeOps _ops;
        private readonly IOperationHost _host;
        private readonly int _activityId = Interlocked.Increment(ref _activityIds);
        /// <summary>Files read ahead in one round trip (configure), kept current by this class's own writes.</summary>
        private Dictionary<string, string?>? _cache;

        public NodeSteps(INodeShell shell, NodeStepOptions? options = null, IOperationHost? host = null)
        {
            _shell = shell ?? throw new ArgumentNullException(nameof(shell));
            Options = options ?? new NodeStepOptions();
            _ops = NodeOps.For(shell, Options);
            _host = host ?? NullOperationHost.Instance;
        }

        public NodeStepOptions Options { get; }
        private string Host => _shell.HostName;
        private string Ext => _ops.ScriptExtension;

        // ------------------------------------------------------------------ discover

        /// <summary>Reads what is installed at <paramref name="installDir"/> (or where the service points) and how it runs.</summary>
        public async Task<NodeInstallation> DiscoverAsync(string? installDir, CancellationToken cancellationToken = default)
        {
            var ct = cancellationToken;
            var inst = new NodeInstallation { HostName = Host, Platform = _shell.Platform };
            var (mode, name, definition) = await _ops.DetectServiceAsync(ct).ConfigureAwait(false);
            inst.RunMode = mode;
            inst.ServiceName = name;
            inst.ServiceDefinition = definition;
            var serviceText = mode == NodeRunMode.BinScripts ? null : await _ops.ReadServiceDefinitionAsync(inst, ct).ConfigureAwait(false);
            if (serviceText is not null)
            {
                inst.ServiceInstallDir = InstallDirIn(serviceText);
                inst.StartArguments = StartArgumentsIn(serviceText);
            }

            installDir = string.IsNullOrWhiteSpace(installDir) ? inst.ServiceInstallDir : installDir!.TrimEnd('/', '\\');
            if (installDir is null)
                throw new BbException("NodeInstallDirMissing", BbErrorCategory.ObjectNotFound,
                    $"No Bitbucket service was found on {Host} ({string.Join(", ", Options.SystemdUnitPaths)}, {Options.InitScriptPath}) to tell the install dir. Pass -InstallDir <dir>.", Host);
            inst.InstallDir = installDir;
            var files = await _ops.ReadFilesAsync(new[]
            {
                BinFile(installDir, "start-bitbucket"), _ops.Combine(installDir, NodeMarker.InstallMarkerName), BinFile(installDir, "set-bitbucket-home"),
                BinFile(installDir, "set-bitbucket-user"), BinFile(installDir, "set-jre-home"),
            }, ct).ConfigureAwait(false);
            if (files[0] is null)
            {
                if (!await _shell.PathExistsAsync(installDir, ct).ConfigureAwait(false))
                    throw new BbException("NodeInstallDirMissing", BbErrorCategory.ObjectNotFound,
                        $"The install dir {installDir} does not exist on {Host}. Check -InstallDir (Get-BbNodeInstallation shows what the service points at).", Host);
                throw new BbException("NodeInstallDirInvalid", BbErrorCategory.InvalidData,
                    $"{installDir} on {Host} is not a Bitbucket install dir: it has no bin/start-bitbucket{Ext}.", Host);
            }

            var facts = await _ops.FactsAsync(_ops.Combine(installDir, "app", "WEB-INF", "lib"), _ops.Parent(installDir), ct).ConfigureAwait(false);
            inst.Version = VersionIn(facts.Lib) ?? VersionOfDirName(installDir);
            inst.FreeBytes = facts.FreeBytes;

            var marker = NodeMarker.Parse(files[1]);
            inst.IsStaged = marker["version"] is not null;
            inst.IsConfigured = marker["configured"] == "true";
            inst.PreviousInstallDir = marker["previous"];
            if (marker["startArguments"] is not null) inst.StartArguments = marker.StartArguments;

            var envHome = facts.Home;
            var serviceHome = serviceText is null ? null : Regex.Match(serviceText, @"BITBUCKET_HOME=(?<h>[^\s""';]+)") is { Success: true } m ? m.Groups["h"].Value : null;
            var scriptHome = AssignmentFile.Get(files[2] ?? "", "BITBUCKET_HOME", _shell.Platform);
            if (!string.IsNullOrEmpty(envHome)) { inst.HomeDir = envHome; inst.HomeSource = NodeHomeSource.Environment; }
            else if (!string.IsNullOrEmpty(serviceHome)) { inst.HomeDir = serviceHome; inst.HomeSource = NodeHomeSource.ServiceDefinition; }
            else if (!string.IsNullOrEmpty(scriptHome)) { inst.HomeDir = scriptHome; inst.HomeSource = NodeHomeSource.SetHomeScript; }

            inst.RunAsUser = NullIfEmpty(AssignmentFile.Get(files[3] ?? "", "BITBUCKET_USER", _shell.Platform));
            if (inst.RunAsUser is null && serviceText is not null && Regex.Match(serviceText, @"^\s*User=(?<u>\S+)", RegexOptions.Multiline) is { Success: true } um)
                inst.RunAsUser = um.Groups["u"].Value;
            inst.JreHome = NullIfEmpty(AssignmentFile.Get(files[4] ?? "", "JRE_HOME", _shell.Platform));

            if (inst.HomeDir is not null)
            {
                // Bitbucket Data Center keeps bitbucket.properties in $BITBUCKET_HOME/shared/ (the shared home); a node
                // that has none there (a single node, or an old layout) may have it in the home itself.
                var homeFiles = await _ops.ReadFilesAsync(new[]
                {
                    _ops.Combine(inst.HomeDir, "shared", "bitbucket.properties"), _ops.Combine(inst.HomeDir, "bitbucket.properties"), _ops.Combine(inst.HomeDir, Options.PidFile),
                }, ct).ConfigureAwait(false);
                var props = homeFiles[0] ?? homeFiles[1] ?? "";
                var port = Regex.Match(props, @"^\s*server\.port\s*[=:]\s*(?<p>\d+)\s*$", RegexOptions.Multiline);
                if (port.Success) inst.HttpPort = int.Parse(port.Groups["p"].Value, CultureInfo.InvariantCulture);
                var contextPath = Regex.Match(props, @"^\s*server\.context-path\s*[=:]\s*(?<p>\S*)\s*$", RegexOptions.Multiline);
                if (contextPath.Success) inst.ContextPath = NullIfEmpty(contextPath.Groups["p"].Value.Trim('/'));
                inst.ProcessId = ParsePid(homeFiles[2]);
                inst.IsRunning = inst.ProcessId is int pid && await _ops.IsProcessAliveAsync(pid, ct).ConfigureAwait(false);
            }
            return inst;
        }

        // ------------------------------------------------------------------ stop

        /// <summary>Stops Bitbucket gracefully (service or bin script), waits for the process to exit and, if asked, for the cluster to show it OFFLINE.</summary>
        public async Task<NodeStepResult> StopAsync(NodeInstallation installation, NodeStopOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new NodeStopOptions();
            var sw = Stopwatch.StartNew();
            var result = new NodeStepResult(Host, NodeStep.Stop) { InstallDir = installation.InstallDir, Version = installation.Version };
            var home = RequireHome(installation);
            var deadline = sw.Elapsed + options.Timeout;
            var pid = await ReadPidAsync(home, cancellationToken).ConfigureAwait(false);
            if (pid is int p && await _ops.IsProcessAliveAsync(p, cancellationToken).ConfigureAwait(false))
            {
                await StopProcessAsync(installation, installation.InstallDir, p, options, deadline - sw.Elapsed, result, cancellationToken).ConfigureAwait(false);
                result.Changed = true;
                result.Summary = $"stopped pid {p}" + (result.Changes.Any(c => c.StartsWith("killed", StringComparison.Ordinal)) ? " (killed)" : "");
            }
            else
            {
                result.Summary = "already stopped";
            }
            if (options.WaitUntilOffline is not null)
            {
                var offline = await PollAsync(options.WaitUntilOffline, deadline - sw.Elapsed, "Waiting for the cluster to show the node OFFLINE", options.MaxPollInterval, cancellationToken).ConfigureAwait(false);
                if (!offline)
                    throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout,
                        $"Bitbucket on {Host} stopped, but the cluster did not show the node OFFLINE within {options.Timeout.TotalSeconds:0} s. Check Get-BbClusterStatus.", Host);
                result.Changes.Add("the cluster shows the node OFFLINE");
            }
            result.State = "STOPPED";
            result.Duration = sw.Elapsed;
            return result;
        }

        private async Task StopProcessAsync(NodeInstallation installation, string scriptDir, int pid, NodeStopOptions options, TimeSpan timeout,
            NodeStepResult result, CancellationToken ct)
        {
            var how = installation.RunMode == NodeRunMode.BinScripts ? $"{scriptDir}/bin/stop-bitbucket{Ext}" : $"the {installation.ServiceName} service";
            _host.Verbose($"{Host}: stopping Bitbucket (pid {pid}) through {how}");
            var r = installation.RunMode == NodeRunMode.BinScripts
                ? await _ops.RunBinScriptAsync(scriptDir, "stop-bitbucket", Array.Empty<string>(), installation.HomeDir, ct).ConfigureAwait(false)
                : await _ops.ServiceAsync(installation, start: false, ct).ConfigureAwait(false);
            if (r.Succeeded) result.Changes.Add($"ran {how}");
            else _host.Warning($"{Host}: {how} failed (exit code {r.ExitCode}): {NodeOps.Tail(r.StandardError + r.StandardOutput, 300)}");

            var exited = await PollAsync(async c => !await _ops.IsProcessAliveAsync(pid, c).ConfigureAwait(false), timeout, $"Waiting for pid {pid} to exit", options.MaxPollInterval, ct).ConfigureAwait(false);
            if (exited) return;
            if (!options.Kill)
                throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout,
                    $"Bitbucket on {Host} (pid {pid}) was still running {options.Timeout.TotalSeconds:0} s after {how}. Wait longer (-Timeout) or stop it hard with -Force.", Host);
            _host.Warning($"{Host}: pid {pid} did not exit in time; killing it (-Force).");
            await _ops.KillAsync(pid, ct).ConfigureAwait(false);
            if (!await PollAsync(async c => !await _ops.IsProcessAliveAsync(pid, c).ConfigureAwait(false), TimeSpan.FromSeconds(15), $"Waiting for killed pid {pid} to exit", options.MaxPollInterval, ct).ConfigureAwait(false))
                throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout, $"Bitbucket on {Host} (pid {pid}) survived a kill.", Host);
            result.Changes.Add($"killed pid {pid}");
        }

        // ------------------------------------------------------------------ pre-stage

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

        // ------------------------------------------------------------------ configure

        /// <summary>
        /// Points the new install dir at the same home, carries JVM/memory settings, JRE home, run-as user and listed
        /// files, records the start flags, and points the service at the new dir. Returns the carried settings and a diff.
        /// </summary>
        public async Task<NodeStepResult> ConfigureAsync(NodeInstallation installation, string newInstallDir, NodeConfigureOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            var ct = cancellationToken;
            options ??= new NodeConfigureOptions();
            var sw = Stopwatch.StartNew();
            newInstallDir = newInstallDir.TrimEnd('/', '\\');
            var result = new NodeStepResult(Host, NodeStep.Configure) { InstallDir = newInstallDir, NewInstallDir = newInstallDir, PreviousInstallDir = installation.InstallDir };
            if (!await _shell.PathExistsAsync(newInstallDir, ct).ConfigureAwait(false))
                throw new BbException("NodeInstallDirMissing", BbErrorCategory.ObjectNotFound,
                    $"The new install dir {newInstallDir} does not exist on {Host}. Pre-stage it first (Copy-BbDistribution).", Host);
            var marker = await ReadMarkerAsync(newInstallDir, ct).ConfigureAwait(false);
            if (marker["version"] is null)
                throw new BbException("NodeNotStaged", BbErrorCategory.InvalidOperation,
                    $"{newInstallDir} on {Host} was not pre-staged by Copy-BbDistribution (no {NodeMarker.InstallMarkerName}); refusing to edit a directory the module did not create.", Host);
            if (string.Equals(newInstallDir, installation.InstallDir, StringComparison.Ordinal))
                throw new BbException("NodeSameInstallDir", BbErrorCategory.InvalidArgument, $"The new install dir is the current one ({newInstallDir}).", Host);
            result.Version = marker["version"];
            var diff = new StringBuilder();
            var p = _shell.Platform;
            try
            {
                await PrefetchAsync(new[] { "set-bitbucket-home", "_start-webapp", "set-jre-home", "set-bitbucket-user" }
                    .SelectMany(b => new[] { BinFile(installation.InstallDir, b), BinFile(newInstallDir, b) })
                    .Concat(options.Files.SelectMany(f => new[] { _ops.Combine(installation.InstallDir, f), _ops.Combine(newInstallDir, f) })).ToList(), ct).ConfigureAwait(false);
                await CarryAllAsync(installation, newInstallDir, options, marker, result, diff, p, ct).ConfigureAwait(false);
            }
            finally
            {
                _cache = null;
            }
            result.Diff = diff.ToString();
            result.Changed = result.Changes.Count > 0;
            result.Summary = result.Changed ? $"carried {result.Carried.Count} setting(s) into {newInstallDir}" : $"{newInstallDir} already configured";
            result.Duration = sw.Elapsed;
            return result;
        }

        private async Task PrefetchAsync(IReadOnlyList<string> paths, CancellationToken ct)
        {
            var texts = await _ops.ReadFilesAsync(paths, ct).ConfigureAwait(false);
            _cache = new Dictionary<string, string?>(StringComparer.Ordinal);
            for (var i = 0; i < paths.Count; i++) _cache[paths[i]] = texts[i];
        }

        private async Task CarryAllAsync(NodeInstallation installation, string newInstallDir, NodeConfigureOptions options, NodeMarker marker,
            NodeStepResult result, StringBuilder diff, ShellPlatform p, CancellationToken ct)
        {

            // BITBUCKET_HOME
            if (installation.HomeSource == NodeHomeSource.Environment)
                _host.Verbose($"{Host}: BITBUCKET_HOME comes from the environment ({installation.HomeDir}); set-bitbucket-home{Ext} is left as shipped.");
            else
            {
                var home = RequireHome(installation);
                await EditAsync(newInstallDir, BinRel("set-bitbucket-home"), text => AssignmentFile.SetRaw(text, "BITBUCKET_HOME", AssignmentFile.Literal(home, p), p),
                    "BITBUCKET_HOME", result, diff, ct).ConfigureAwait(false);
            }

            // JVM and memory settings, JRE home, run-as user: the old dir's raw values.
            await CarryVariablesAsync(installation.InstallDir, newInstallDir, "_start-webapp", options.JvmVariables, result, diff, ct).ConfigureAwait(false);
            await CarryVariablesAsync(installation.InstallDir, newInstallDir, "set-jre-home", new[] { "JRE_HOME" }, result, diff, ct).ConfigureAwait(false);
            await CarryVariablesAsync(installation.InstallDir, newInstallDir, "set-bitbucket-user", new[] { "BITBUCKET_USER" }, result, diff, ct).ConfigureAwait(false);

            // Files the admin lists, copied whole.
            foreach (var rel in options.Files)
            {
                var oldText = await ReadOrNullAsync(_ops.Combine(installation.InstallDir, rel), ct).ConfigureAwait(false);
                if (oldText is null)
                {
                    _host.Warning($"{Host}: {rel} does not exist in {installation.InstallDir}; nothing to carry.");
                    continue;
                }
                await EditAsync(newInstallDir, rel, _ => oldText, "(file)", result, diff, ct, createIfMissing: true).ConfigureAwait(false);
            }

            // The service definition follows the new dir; its flags (--no-search) stay as they are.
            if (installation.RunMode != NodeRunMode.BinScripts)
            {
                var from = installation.ServiceInstallDir ?? installation.InstallDir;
                if (!string.Equals(from, newInstallDir, StringComparison.Ordinal))
                {
                    var serviceDiff = await _ops.RepointServiceAsync(installation, from, newInstallDir, ct).ConfigureAwait(false);
                    if (serviceDiff.Length > 0)
                    {
                        diff.Append(serviceDiff);
                        result.Carried.Add(new NodeCarriedSetting(installation.ServiceDefinition ?? "(service)", "(service)", from, newInstallDir));
                        result.Changes.Add($"pointed {installation.ServiceName} at {newInstallDir}");
                    }
                }
            }

            var startArgs = options.StartArguments ?? installation.StartArguments;
            var wanted = NodeMarker.Parse(marker.ToString());
            wanted["configured"] = "true";
            wanted["previous"] = installation.InstallDir;
            wanted["startArguments"] = string.Join(" ", startArgs);
            if (wanted.ToString() != marker.ToString())
                await _shell.WriteTextAsync(_ops.Combine(newInstallDir, NodeMarker.InstallMarkerName), wanted.ToString(), ct).ConfigureAwait(false);
        }

        private async Task CarryVariablesAsync(string oldDir, string newDir, string script, IEnumerable<string> names, NodeStepResult result, StringBuilder diff, CancellationToken ct)
        {
            var oldText = await ReadOrNullAsync(BinFile(oldDir, script), ct).ConfigureAwait(false);
            if (oldText is null) return;
            var p = _shell.Platform;
            foreach (var name in names)
            {
                var raw = AssignmentFile.GetRaw(oldText, name, p);
                if (raw is null) continue;
                await EditAsync(newDir, BinRel(script), text => AssignmentFile.SetRaw(text, name, raw, p), name, result, diff, ct).ConfigureAwait(false);
            }
        }

        /// <summary>Reads a file of the new dir, applies <paramref name="edit"/>, writes it back atomically when it changed.</summary>
        private async Task EditAsync(string newDir, string rel, Func<string, string> edit, string name, NodeStepResult result, StringBuilder diff, CancellationToken ct,
            bool createIfMissing = false)
        {
            var path = _ops.Combine(newDir, rel);
            var before = await ReadOrNullAsync(path, ct).ConfigureAwait(false);
            if (before is null && !createIfMissing)
            {
                _host.Warning($"{Host}: {rel} is missing in {newDir}; {name} was not carried.");
                return;
            }
            before ??= "";
            var after = edit(before);
            if (after == before) return;
            await _shell.WriteTextAsync(path, after, ct).ConfigureAwait(false);
            if (_cache is not null) _cache[path] = after;
            var from = name == "(file)" ? null : AssignmentFile.Get(before, name, _shell.Platform);
            var to = name == "(file)" ? null : AssignmentFile.Get(after, name, _shell.Platform);
            result.Carried.Add(new NodeCarriedSetting(rel, name, from, to));
            result.Changes.Add(name == "(file)" ? $"copied {rel}" : $"set {name} in {rel}");
            diff.Append(AssignmentFile.Diff(rel, before, after));
        }

        // ------------------------------------------------------------------ start

        /// <summary>Starts Bitbucket (service or the install dir's bin script) and waits until /status says RUNNING.</summary>
        public async Task<NodeStepResult> StartAsync(NodeInstallation installation, NodeStartOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new NodeStartOptions();
            var sw = Stopwatch.StartNew();
            var ct = cancellationToken;
            var runDir = installation.RunMode == NodeRunMode.BinScripts ? installation.InstallDir : installation.ServiceInstallDir ?? installation.InstallDir;
            var result = new NodeStepResult(Host, NodeStep.Start) { InstallDir = runDir, Version = installation.Version };
            var home = RequireHome(installation);
            if (installation.IsStaged && !installation.IsConfigured && installation.RunMode == NodeRunMode.BinScripts)
                throw new BbException("NodeNotConfigured", BbErrorCategory.InvalidOperation,
                    $"{installation.InstallDir} on {Host} was pre-staged but not configured; run Install-BbNodeVersion before starting it.", Host);

            var pid = await ReadPidAsync(home, ct).ConfigureAwait(false);
            if (pid is int p && await _ops.IsProcessAliveAsync(p, ct).ConfigureAwait(false))
            {
                // Running, but from which dir? The module records what it started; otherwise the original install runs.
                var startedBefore = NodeMarker.Parse(await ReadOrNullAsync(_ops.Combine(home, NodeMarker.HomeStateName), ct).ConfigureAwait(false));
                var runningDir = startedBefore["installDir"] ?? (installation.IsStaged ? installation.PreviousInstallDir : null);
                if (runningDir is not null && !string.Equals(runningDir, runDir, StringComparison.Ordinal))
                    throw new BbException("NodeRunningOtherInstall", BbErrorCategory.InvalidOperation,
                        $"Bitbucket on {Host} already runs (pid {p}) from {runningDir}, not {runDir}. Stop it first (Stop-BbNode).", Host);
                result.Summary = $"already running (pid {p})";
            }
            else
            {
                var args = options.StartArguments ?? installation.StartArguments;
                var how = installation.RunMode == NodeRunMode.BinScripts
                    ? $"{runDir}/bin/start-bitbucket{Ext}{(args.Count == 0 ? "" : " " + string.Join(" ", args))}"
                    : $"the {installation.ServiceName} service";
                _host.Verbose($"{Host}: starting Bitbucket through {how}");
                var r = installation.RunMode == NodeRunMode.BinScripts
                    ? await _ops.RunBinScriptAsync(runDir, "start-bitbucket", args, home, ct).ConfigureAwait(false)
                    : await _ops.ServiceAsync(installation, start: true, ct).ConfigureAwait(false);
                if (!r.Succeeded)
                    throw new BbException("NodeStartFailed", BbErrorCategory.InvalidResult,
                        $"Starting Bitbucket on {Host} through {how} failed (exit code {r.ExitCode}): {NodeOps.Tail(r.StandardError + r.StandardOutput, 400)}", Host);
                result.Changes.Add($"ran {how}");
                result.Changed = true;
                result.Summary = $"started {runDir}";
            }
            var state = new NodeMarker { ["installDir"] = runDir, ["version"] = installation.Version, ["startedAt"] = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture) };
            if (result.Changed)
                await _shell.WriteTextAsync(_ops.Combine(home, NodeMarker.HomeStateName), state.ToString(), ct).ConfigureAwait(false);

            if (!options.NoWait)
            {
                using var probe = options.StatusUri is { } given
                    ? NodeStatusProbe.ForStatusUri(given, options.Transport)
                    : new NodeStatusProbe(NodeUrls.FromParts(Host, installation.HttpPort, installation.ContextPath), options.Transport);
                var uri = probe.StatusUri;
                string last = "no answer";
                var running = await PollAsync(async c =>
                {
                    var status = await probe.ReadAsync(c).ConfigureAwait(false);
                    last = status.ToString();
                    if (status.IsError)
                        throw new BbException("NodeStartFailed", BbErrorCategory.InvalidResult, $"Bitbucket on {Host} reports ERROR at {uri} while starting. See its logs in {home}/log.", Host);
                    if (probe.Hopeless(status, Host) is { } hopeless) throw hopeless;
                    return status.IsRunning;
                }, options.Timeout, $"Waiting for {uri} to say RUNNING", options.MaxPollInterval, ct).ConfigureAwait(false);
                if (!running)
                    throw new BbException("NodeStartTimeout", BbErrorCategory.OperationTimeout,
                        $"Bitbucket on {Host} did not report RUNNING at {uri} within {options.Timeout.TotalSeconds:0} s (last seen: {last}). See its logs in {home}/log.", Host);
                result.State = "RUNNING";
            }
            result.Duration = sw.Elapsed;
            return result;
        }

        // ------------------------------------------------------------------ roll back

        /// <summary>
        /// Goes back to <paramref name="oldInstallDir"/> (never touched by the upgrade): stops a newer version the module
        /// started, points the service back at the old dir and starts it. Safe at any step and on re-runs.
        /// </summary>
        public async Task<NodeStepResult> RollBackAsync(string oldInstallDir, string? newInstallDir, NodeStopOptions? stopOptions = null,
            NodeStartOptions? startOptions = null, CancellationToken cancellationToken = default)
        {
            var ct = cancellationToken;
            var sw = Stopwatch.StartNew();
            var old = await DiscoverAsync(oldInstallDir, ct).ConfigureAwait(false);
            var home = RequireHome(old);
            if (newInstallDir is null && old.ServiceInstallDir is not null && old.ServiceInstallDir != old.InstallDir) newInstallDir = old.ServiceInstallDir;
            var state = NodeMarker.Parse(await ReadOrNullAsync(_ops.Combine(home, NodeMarker.HomeStateName), ct).ConfigureAwait(false));
            newInstallDir ??= state["installDir"] is string s && s != old.InstallDir ? s : null;
            var result = new NodeStepResult(Host, NodeStep.RollBack) { InstallDir = old.InstallDir, PreviousInstallDir = newInstallDir, Version = old.Version };

            // 1. Stop what runs, unless it is already the old version.
            var runningDir = state["installDir"] ?? old.InstallDir;
            if (old.IsRunning && old.ProcessId is int pid && runningDir != old.InstallDir)
            {
                var scriptDir = newInstallDir is not null && await _shell.PathExistsAsync(newInstallDir, ct).ConfigureAwait(false) ? newInstallDir : old.InstallDir;
                var opts = stopOptions ?? new NodeStopOptions();
                await StopProcessAsync(old, scriptDir, pid, opts, opts.Timeout, result, ct).ConfigureAwait(false);
                result.Changes.Add($"stopped the version running from {runningDir}");
            }

            // 2. The service goes back to the old dir.
            if (old.RunMode != NodeRunMode.BinScripts && newInstallDir is not null)
            {
                var serviceDiff = await _ops.RepointServiceAsync(old, newInstallDir, old.InstallDir, ct).ConfigureAwait(false);
                if (serviceDiff.Length > 0)
                {
                    result.Diff = serviceDiff;
                    result.Changes.Add($"pointed {old.ServiceName} back at {old.InstallDir}");
                    old.ServiceInstallDir = old.InstallDir;
                }
            }

            // 3. Start the old version (a no-op wait when it already runs).
            var restarted = await StartAsync(old, startOptions, ct).ConfigureAwait(false);
            result.Changes.AddRange(restarted.Changes);
            result.State = restarted.State;
            result.Changed = result.Changes.Count > 0;
            result.Summary = result.Changed ? $"back on {old.Version} in {old.InstallDir}" : $"already on {old.Version} in {old.InstallDir}";
            result.Duration = sw.Elapsed;
            return result;
        }

        // ------------------------------------------------------------------ helpers

        private string BinRel(string script) => (_shell.Platform == ShellPlatform.Posix ? "bin/" : "bin\\") + script + Ext;
        private string BinFile(string installDir, string script) => _ops.Combine(installDir, "bin", script + Ext);

        private string RequireHome(NodeInstallation installation) =>
            installation.HomeDir ?? throw new BbException("NodeHomeMissing", BbErrorCategory.ObjectNotFound,
                $"BITBUCKET_HOME of {installation.InstallDir} on {Host} is unknown: it is neither in the environment nor in bin/set-bitbucket-home{Ext}.", Host);

        private async Task<string?> VersionOfAsync(string installDir, CancellationToken ct, bool jarOnly = false) =>
            VersionIn(await _ops.ListAsync(_ops.Combine(installDir, "app", "WEB-INF", "lib"), ct).ConfigureAwait(false)) ?? (jarOnly ? null : VersionOfDirName(installDir));

        /// <summary>The version of the bitbucket-api-X.Y.Z.jar among <paramref name="libFiles"/>.</summary>
        private static string? VersionIn(IEnumerable<string> libFiles)
        {
            foreach (var f in libFiles)
            {
                var m = Regex.Match(f.Trim(), @"^bitbucket-api-(?<v>\d+\.\d+\.\d+)(?:[.-].*)?\.jar$");
                if (m.Success) return m.Groups["v"].Value;
            }
            return null;
        }

        private static string? VersionOfDirName(string installDir)
        {
            var dir = Regex.Match(installDir, @"atlassian-bitbucket-(?<v>\d+\.\d+\.\d+)[\\/]*$");
            return dir.Success ? dir.Groups["v"].Value : null;
        }

        private async Task<NodeMarker> ReadMarkerAsync(string installDir, CancellationToken ct) =>
            NodeMarker.Parse(await ReadOrNullAsync(_ops.Combine(installDir, NodeMarker.InstallMarkerName), ct).ConfigureAwait(false));

        private async Task<string?> ReadOrNullAsync(string path, CancellationToken ct) =>
            _cache is not null && _cache.TryGetValue(path, out var cached) ? cached : (await _ops.ReadFilesAsync(new[] { path }, ct).ConfigureAwait(false))[0];

        private async Task<int?> ReadPidAsync(string home, CancellationToken ct) =>
            ParsePid(await ReadOrNullAsync(_ops.Combine(home, Options.PidFile), ct).ConfigureAwait(false));

        private static int? ParsePid(string? text) =>
            text is not null && int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : (int?)null;

        internal static string? InstallDirIn(string serviceText)
        {
            // A Windows service (procrun): ImagePath names <install dir>\bin\<service exe>, quoted when the path has
            // spaces (C:\Program Files\Atlassian\Bitbucket\<version>).
            var w = Regex.Match(serviceText, @"\\ImagePath=""?(?<dir>[A-Za-z]:\\[^""\r\n]*?)\\bin\\[^\\""\r\n]+\.exe", RegexOptions.IgnoreCase);
            if (w.Success) return w.Groups["dir"].Value;
            // A quoted Windows path may hold spaces; an unquoted one (and any POSIX path) ends at white space.
            var q = Regex.Match(serviceText, @"""(?<dir>[A-Za-z]:\\[^""\r\n]*?)\\bin\\(?:start|stop)-bitbucket\.bat", RegexOptions.IgnoreCase);
            if (q.Success) return q.Groups["dir"].Value;
            var m = Regex.Match(serviceText, @"(?<dir>(?:/|[A-Za-z]:\\)[^\s""';=]*?)[/\\]bin[/\\](?:start|stop)-bitbucket\.(?:sh|bat)");
            if (m.Success) return m.Groups["dir"].Value;
            m = Regex.Match(serviceText, @"cd\s+[""']?(?<dir>/[^\s""';]+?)/bin[""']?(?=[\s;&|]|$)", RegexOptions.Multiline);
            return m.Success ? m.Groups["dir"].Value : null;
        }

        internal static IReadOnlyList<string> StartArgumentsIn(string serviceText)
        {
            var m = Regex.Match(serviceText, @"start-bitbucket\.(?:sh|bat)[ \t]+(?<args>--[^\r\n""';&|]*)");
            return m.Success ? m.Groups["args"].Value.Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        }

        private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

        private BbException Failed(string doing, ShellResult r) =>
            new BbException("NodeCommandFailed", BbErrorCategory.InvalidResult, $"Could not {doing} on {Host}: {NodeOps.Tail(r.StandardError + r.StandardOutput, 400)}", Host);

        private void Report(string status, int percent, bool completed = false) =>
            _host.Progress(new OperationProgress(_activityId, $"Bitbucket node {Host}", status) { PercentComplete = percent, Completed = completed });

        /// <summary>Polls with a deadline and a backing-off interval (100 ms up to 1 s), reporting progress.</summary>
        /// <summary>Polls from 100 ms, backing off by 1.5× to <paramref name="maxInterval"/>.</summary>
        private async Task<bool> PollAsync(Func<CancellationToken, Task<bool>> done, TimeSpan timeout, string activity, TimeSpan maxInterval, CancellationToken ct)
        {
            var sw = Stopwatch.StartNew();
            var delay = TimeSpan.FromMilliseconds(100);
            while (true)
            {
                if (await done(ct).ConfigureAwait(false)) { Report(activity, 100, completed: true); return true; }
                var left = timeout - sw.Elapsed;
                if (left <= TimeSpan.Zero) { Report(activity, 100, completed: true); return false; }
                _host.Progress(new OperationProgress(_activityId, $"Bitbucket node {Host}", activity)
                {
                    SecondsRemaining = (int)left.TotalSeconds,
                    PercentComplete = (int)Math.Min(99, 100 * sw.Elapsed.TotalSeconds / Math.Max(0.001, timeout.TotalSeconds)),
                });
                await Task.Delay(delay < left ? delay : left, ct).ConfigureAwait(false);
                if (delay < maxInterval) delay = TimeSpan.FromTicks(Math.Min((long)(delay.Ticks * 1.5), maxInterval.Ticks));
            }
        }
    }
}
