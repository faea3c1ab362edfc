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

            var args = options.StartArguments ?? installation.StartArguments;
            var how = installation.RunMode == NodeRunMode.BinScripts
                ? $"{runDir}/bin/start-bitbucket{Ext}{(args.Count == 0 ? "" : " " + string.Join(" ", args))}"
                : $"the {installation.ServiceName} service";
            var state = new NodeMarker { ["installDir"] = runDir, ["version"] = installation.Version, ["startedAt"] = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture) };
            var statePath = _ops.Combine(home, NodeMarker.HomeStateName);
            var oneTrip = await _ops.StartInOneTripAsync(installation, runDir, args, _ops.Combine(home, Options.PidFile), statePath, state.ToString(), ct).ConfigureAwait(false);
            if (oneTrip is not null)
            {
                // The pid check, the start and the state file in one round trip (issue 15: one ssh process per call).
                if (oneTrip.State == "running") RequireRunningFrom(runDir, installation, oneTrip.Pid, oneTrip.After, result);
                else
                {
                    _host.Verbose($"{Host}: started Bitbucket through {how}");
                    if (oneTrip.State == "failed") throw StartFailed(how, oneTrip.ExitCode, oneTrip.Output);
                    if (oneTrip.State == "no-state")
                        throw new BbException("NodeCommandFailed", BbErrorCategory.InvalidResult, $"Could not write {statePath} on {Host} after starting Bitbucket: {NodeOps.Tail(oneTrip.Output, 400)}", Host);
                    Started(how, runDir, result);
                }
            }
            else
            {
                var pid = await ReadPidAsync(home, ct).ConfigureAwait(false);
                if (pid is int p && await _ops.IsProcessAliveAsync(p, ct).ConfigureAwait(false))
                    RequireRunningFrom(runDir, installation, p, await ReadOrNullAsync(statePath, ct).ConfigureAwait(false), result);
                else
                {
                    _host.Verbose($"{Host}: starting Bitbucket through {how}");
                    var r = installation.RunMode == NodeRunMode.BinScripts
                        ? await _ops.RunBinScriptAsync(runDir, "start-bitbucket", args, home, ct).ConfigureAwait(false)
                        : await _ops.ServiceAsync(installation, start: true, ct).ConfigureAwait(false);
                    if (!r.Succeeded) throw StartFailed(how, r.ExitCode, r.StandardError + r.StandardOutput);
                    Started(how, runDir, result);
                    await _shell.WriteTextAsync(statePath, state.ToString(), ct).ConfigureAwait(false);
                }
            }

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

        /// <summary>Bitbucket already runs: fine from <paramref name="runDir"/>, refused from another install (the home's state file says which the module started).</summary>
        private void RequireRunningFrom(string runDir, NodeInstallation installation, int pid, string? stateText, NodeStepResult result)
        {
            // Running, but from which dir? The module records what it started; otherwise the original install runs.
            var runningDir = NodeMarker.Parse(stateText)["installDir"] ?? (installation.IsStaged ? installation.PreviousInstallDir : null);
            if (runningDir is not null && !string.Equals(runningDir, runDir, StringComparison.Ordinal))
                throw new BbException("NodeRunningOtherInstall", BbErrorCategory.InvalidOperation,
                    $"Bitbucket on {Host} already runs (pid {pid}) from {runningDir}, not {runDir}. Stop it first (Stop-BbNode).", Host);
            result.Summary = $"already running (pid {pid})";
        }

        private BbException StartFailed(string how, int exitCode, string output) =>
            new BbException("NodeStartFailed", BbErrorCategory.InvalidResult,
                $"Starting Bitbucket on {Host} through {how} failed (exit code {exitCode}): {NodeOps.Tail(output, 400)}", Host);

        private static void Started(string how, string runDir, NodeStepResult result)
        {
            result.Changes.Add($"ran {how}");
            result.Changed = true;
            result.Summary = $"started {runDir}";
        }
    }
}
