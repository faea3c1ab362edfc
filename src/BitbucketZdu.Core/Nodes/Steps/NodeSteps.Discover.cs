using System;
using System.Globalization;
using System.Net.Http;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
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
    }
}
