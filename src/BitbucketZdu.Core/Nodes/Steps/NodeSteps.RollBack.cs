using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    public sealed partial class NodeSteps
    {
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
    }
}
