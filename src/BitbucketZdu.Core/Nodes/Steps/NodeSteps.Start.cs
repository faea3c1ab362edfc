using System;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
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
    }
}
