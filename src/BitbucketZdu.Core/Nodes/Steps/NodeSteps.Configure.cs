using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
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
    }
}
