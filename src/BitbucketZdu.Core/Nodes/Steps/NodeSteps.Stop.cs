using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
        /// <summary>Stops Bitbucket gracefully (service or bin script), waits for the process to exit and, if asked, for the cluster to show it OFFLINE.</summary>
        public async Task<NodeStepResult> StopAsync(NodeInstallation installation, NodeStopOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new NodeStopOptions();
            var sw = Stopwatch.StartNew();
            var result = new NodeStepResult(Host, NodeStep.Stop) { InstallDir = installation.InstallDir, Version = installation.Version };
            var home = RequireHome(installation);
            var deadline = sw.Elapsed + options.Timeout;
            Report("Stopping Bitbucket and waiting for its process to exit", 10);
            var oneTrip = await _ops.StopAndWaitAsync(installation, installation.InstallDir, _ops.Combine(home, Options.PidFile), options.Timeout, cancellationToken).ConfigureAwait(false);
            if (oneTrip is not null)
            {
                Report("Stopping Bitbucket and waiting for its process to exit", 100, completed: true);
                if (oneTrip.State == "not-running") result.Summary = "already stopped";
                else
                {
                    var how = StopHow(installation, installation.InstallDir);
                    _host.Verbose($"{Host}: stopped Bitbucket (pid {oneTrip.Pid}) through {how}, waiting on the node");
                    AfterStopCommand(how, oneTrip.ExitCode, oneTrip.Output, result);
                    if (oneTrip.State == "running") await KillAfterTimeoutAsync(oneTrip.Pid, how, options, result, cancellationToken).ConfigureAwait(false);
                    result.Changed = true;
                    result.Summary = $"stopped pid {oneTrip.Pid}" + (result.Changes.Any(c => c.StartsWith("killed", StringComparison.Ordinal)) ? " (killed)" : "");
                }
            }
            else if (await ReadPidAsync(home, cancellationToken).ConfigureAwait(false) is int p && await _ops.IsProcessAliveAsync(p, cancellationToken).ConfigureAwait(false))
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
            var how = StopHow(installation, scriptDir);
            _host.Verbose($"{Host}: stopping Bitbucket (pid {pid}) through {how}");
            var r = installation.RunMode == NodeRunMode.BinScripts
                ? await _ops.RunBinScriptAsync(scriptDir, "stop-bitbucket", Array.Empty<string>(), installation.HomeDir, ct).ConfigureAwait(false)
                : await _ops.ServiceAsync(installation, start: false, ct).ConfigureAwait(false);
            AfterStopCommand(how, r.ExitCode, r.StandardError + r.StandardOutput, result);

            var exited = await PollAsync(async c => !await _ops.IsProcessAliveAsync(pid, c).ConfigureAwait(false), timeout, $"Waiting for pid {pid} to exit", options.MaxPollInterval, ct).ConfigureAwait(false);
            if (!exited) await KillAfterTimeoutAsync(pid, how, options, result, ct).ConfigureAwait(false);
        }

        private string StopHow(NodeInstallation installation, string scriptDir) =>
            installation.RunMode == NodeRunMode.BinScripts ? $"{scriptDir}/bin/stop-bitbucket{Ext}" : $"the {installation.ServiceName} service";

        private void AfterStopCommand(string how, int exitCode, string output, NodeStepResult result)
        {
            if (exitCode == 0) result.Changes.Add($"ran {how}");
            else _host.Warning($"{Host}: {how} failed (exit code {exitCode}): {NodeOps.Tail(output, 300)}");
        }

        /// <summary>The process outlived the stop's deadline: NodeStopTimeout, or with -Force a kill and a short wait for it to go.</summary>
        private async Task KillAfterTimeoutAsync(int pid, string how, NodeStopOptions options, NodeStepResult result, CancellationToken ct)
        {
            if (!options.Kill)
                throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout,
                    $"Bitbucket on {Host} (pid {pid}) was still running {options.Timeout.TotalSeconds:0} s after {how}. Wait longer (-Timeout) or stop it hard with -Force.", Host);
            _host.Warning($"{Host}: pid {pid} did not exit in time; killing it (-Force).");
            await _ops.KillAsync(pid, ct).ConfigureAwait(false);
            if (!await PollAsync(async c => !await _ops.IsProcessAliveAsync(pid, c).ConfigureAwait(false), TimeSpan.FromSeconds(15), $"Waiting for killed pid {pid} to exit", options.MaxPollInterval, ct).ConfigureAwait(false))
                throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout, $"Bitbucket on {Host} (pid {pid}) survived a kill.", Host);
            result.Changes.Add($"killed pid {pid}");
        }
    }
}
