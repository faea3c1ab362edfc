using System;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;

namespace BitbucketZdu.Core.Upgrade.Runner
{
    /// <summary>Runs plan steps with a journal line before and after each, progress, and timing.</summary>
    internal sealed class StepRecorder
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;
        private readonly string _cluster;
        private readonly int _totalSteps;
        private readonly UpgradeHook? _hook;
        private readonly string? _targetVersion;
        private int _stepsSeen;

        public StepRecorder(UpgradePorts ports, IOperationHost host, string cluster, string runId, int totalSteps, UpgradeHook? hook = null, string? targetVersion = null)
        {
            _ports = ports;
            _host = host;
            _cluster = cluster;
            RunId = runId;
            _totalSteps = Math.Max(1, totalSteps);
            _hook = hook;
            _targetVersion = targetVersion;
        }

        public string RunId { get; }

        public Task WriteAsync(string kind, string? step, string? node, string? message, CancellationToken ct, Action<JournalEntry>? fill = null)
        {
            var e = new JournalEntry
            {
                Time = _ports.Clock.UtcNow,
                RunId = RunId,
                Kind = kind,
                Step = step,
                Node = node,
                Message = message,
            };
            fill?.Invoke(e);
            return _ports.Journal.AppendAsync(_cluster, e, ct);
        }

        private Task HookAsync(UpgradePhase phase, PlanStep step, string message, CancellationToken ct) =>
            _hook is null ? Task.CompletedTask
                : _hook(new UpgradeEvent(phase, _cluster, step.Node, message) { Step = step.Key, TargetVersion = _targetVersion }, ct);

        /// <summary>Records that a step is already done (real state checked) and moves progress on.</summary>
        public async Task SkipAsync(PlanStep step, string why, CancellationToken ct)
        {
            Interlocked.Increment(ref _stepsSeen);
            _host.Verbose($"[{step.Key}] already done: {why}");
            await WriteAsync(JournalKinds.StepSkipped, step.Key, step.Node, "already done: " + why, ct).ConfigureAwait(false);
        }

        /// <summary>Runs one step: journal begin, the work, journal done (or failed, then rethrows). Returns its duration.</summary>
        public async Task<TimeSpan> RunAsync(PlanStep step, Func<CancellationToken, Task> work, CancellationToken ct)
        {
            var n = Interlocked.Increment(ref _stepsSeen);
            _host.Progress(new OperationProgress(ProgressActivities.Run, "Rolling upgrade of " + _cluster, $"Step {step.Number} of {_totalSteps}: {step.Target}")
            {
                CurrentOperation = step.Action,
                PercentComplete = (int)(100.0 * (n - 1) / _totalSteps),
            });
            _host.Verbose($"[{step.Key}] {step.Action}");
            await WriteAsync(JournalKinds.StepBegin, step.Key, step.Node, step.Action, ct).ConfigureAwait(false);
            var started = _ports.Clock.Timestamp;
            try
            {
                // A throw here fails the step like its work failing would (journaled step-failed, node restored).
                await HookAsync(UpgradePhase.StepStarting, step, step.Action, ct).ConfigureAwait(false);
                await work(ct).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var cancelled = ex is OperationCanceledException && ct.IsCancellationRequested;
                try
                {
                    await WriteAsync(JournalKinds.StepFailed, step.Key, step.Node, cancelled ? "cancelled (Ctrl+C)" : ex.Message, CancellationToken.None,
                        e => e.DurationMs = (long)_ports.Clock.Since(started).TotalMilliseconds).ConfigureAwait(false);
                }
                catch (Exception journalError) when (!(journalError is OperationCanceledException))
                {
                    _host.Warning($"Could not record the failure of step {step.Key} in the journal: {journalError.Message}");
                }
                throw;
            }
            var took = _ports.Clock.Since(started);
            await WriteAsync(JournalKinds.StepDone, step.Key, step.Node, null, CancellationToken.None, e => e.DurationMs = (long)took.TotalMilliseconds).ConfigureAwait(false);
            await HookAsync(UpgradePhase.StepDone, step, "Done: " + step.Action, ct).ConfigureAwait(false);
            return took;
        }
    }
}
