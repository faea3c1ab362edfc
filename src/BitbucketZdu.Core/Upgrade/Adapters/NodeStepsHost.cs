using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Timing;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Adapters
{
    /// <summary>
    /// The engine's <see cref="INodeHost"/> over the node steps (Core/Nodes), on whatever shell reaches the node.
    /// A node's versioned install dirs live side by side under the profile's InstallRoot. Which one is "installed"
    /// (the one the next start runs) is the service definition's dir for a service, and for bin-script nodes the
    /// module's record in BITBUCKET_HOME (<see cref="NodeMarker.HomeStateName"/>), defaulting to the original install.
    /// Pre-staging extracts and verifies (and, for bin-script nodes, carries the configuration into the new dir, which
    /// nothing runs yet); repointing a service and switching happen in <see cref="InstallAsync"/>, while the node is
    /// stopped, so a node that restarts on its own before its turn comes back on the old version.
    /// Waits run on the engine's <see cref="UpgradeClock"/> (virtual time in tests). While a node is out of rotation its
    /// process and /status are checked at the profile's first poll interval, without back-off (each check is one shell
    /// run or one GET), and a step that changes the node reuses the view the host read just before, instead of reading
    /// every install dir again (<see cref="ViewForChangeAsync"/>).
    /// </summary>
    public sealed class NodeStepsHost : INodeHost, IDisposable
    {
        private static readonly Regex InstallDirName = new Regex(@"^atlassian-bitbucket-(?<v>\d+\.\d+\.\d+)$", RegexOptions.IgnoreCase);

        private readonly Func<NodeProfile, CancellationToken, Task<INodeShell>> _openShell;
        private readonly ConcurrentDictionary<string, Lazy<Task<INodeShell>>> _shells =
            new ConcurrentDictionary<string, Lazy<Task<INodeShell>>>(StringComparer.OrdinalIgnoreCase);
        private readonly IOperationHost _host;
        private readonly UpgradeTimeouts _timeouts;
        private readonly NodeStepOptions _stepOptions;
        private readonly ZduTransport? _transport;
        private readonly ConcurrentDictionary<string, NodeStatusProbe> _probes = new ConcurrentDictionary<string, NodeStatusProbe>(StringComparer.OrdinalIgnoreCase);
        private readonly UpgradeClock _clock;
        private readonly ConcurrentDictionary<string, (NodeView View, long At)> _lastRead =
            new ConcurrentDictionary<string, (NodeView View, long At)>(StringComparer.OrdinalIgnoreCase);
        /// <summary>The view of a bin-script node just switched, its state file read back by the install (see <see cref="InstallAsync"/>).</summary>
        private readonly ConcurrentDictionary<string, (NodeView View, long At)> _installed =
            new ConcurrentDictionary<string, (NodeView View, long At)>(StringComparer.OrdinalIgnoreCase);
        /// <summary>The view a stop acted on, for the wait for its process to go (only that wait takes it).</summary>
        private readonly ConcurrentDictionary<string, (NodeView View, long At)> _stopped =
            new ConcurrentDictionary<string, (NodeView View, long At)>(StringComparer.OrdinalIgnoreCase);

        /// <summary>How old a read may be for the next change to act on it (the steps of one node follow each other within this).</summary>
        internal static readonly TimeSpan ReuseReadFor = TimeSpan.FromSeconds(5);

        /// <param name="transport">TLS trust and proxy of the /status probes: the connection's (the cluster API client's).</param>
        /// <param name="clock">The engine's clock (<see cref="UpgradePorts.Clock"/>); real time by default.</param>
        public NodeStepsHost(ClusterProfile profile, Func<NodeProfile, CancellationToken, Task<INodeShell>> openShell,
            IOperationHost? host = null, NodeStepOptions? stepOptions = null, ZduTransport? transport = null, UpgradeClock? clock = null)
        {
            _transport = transport;
            _clock = clock ?? UpgradeClock.System;
            _openShell = openShell ?? throw new ArgumentNullException(nameof(openShell));
            _host = host ?? NullOperationHost.Instance;
            _timeouts = profile.Timeouts;
            _stepOptions = stepOptions ?? new NodeStepOptions { MinimumFreeBytes = Math.Min(profile.MinFreeDiskBytes, 512L * 1024 * 1024) };
        }

        public async Task<NodeHostProbe> ProbeAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            try
            {
                var view = await ReadAsync(node, cancellationToken).ConfigureAwait(false);
                return new NodeHostProbe { Reachable = true, InstalledVersion = view.Current.Version, FreeDiskBytes = view.Current.FreeBytes };
            }
            catch (Exception ex) when (IsNodeFailure(ex))
            {
                return new NodeHostProbe { Reachable = false, Problem = $"{node.Name} ({node.Place}.Remoting = {node.RemotingTarget}): {ex.Message}" };
            }
        }

        public async Task<NodeHostState> GetStateAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            // Right after an install whose switch was read back from the node (InstallAsync), that read is the answer,
            // once; every other call reads the node afresh.
            NodeView view;
            if (_installed.TryRemove(node.Name, out var installed) && _clock.Since(installed.At) <= ReuseReadFor)
            {
                view = installed.View;
                _lastRead[node.Name] = installed;
            }
            else view = await ReadAsync(node, cancellationToken).ConfigureAwait(false);
            return new NodeHostState
            {
                ProcessRunning = view.Current.IsRunning,
                InstalledVersion = view.Current.Version,
                StagedVersions = view.All.Where(i => i.IsStaged || ReferenceEquals(i, view.Current)).Select(i => i.Version).OfType<string>().Distinct().ToArray(),
                StatusRunning = await StatusRunningAsync(node, cancellationToken).ConfigureAwait(false),
                ProcessId = view.Current.IsRunning ? view.Current.ProcessId : null,
            };
        }

        public async Task PreStageAsync(NodeProfile node, ReleaseArchive archive, string targetVersion, CancellationToken cancellationToken)
        {
            var view = await ReadAsync(node, cancellationToken).ConfigureAwait(false);
            var distribution = new NodeDistribution { Sha256 = archive.Sha256 };
            if (archive.IsUrl) distribution.Uri = new Uri(archive.Location);
            else distribution.LocalPath = archive.Location;
            var result = await view.Steps.PreStageAsync(view.Current, distribution, cancellationToken).ConfigureAwait(false);
            if (result.Version != targetVersion)
                throw new BbException("UpgradeArchiveVersionMismatch", BbErrorCategory.InvalidData,
                    $"The archive {archive.Location} holds Bitbucket {result.Version}, but the profile's TargetVersion is {targetVersion}.", node.Name);
            _host.Verbose($"{node.Name}: {result.Summary}");
            // Bin-script nodes: carrying the configuration only writes into the new dir, which nothing runs yet, so it
            // is done now rather than while the node is out of rotation. A service is repointed only in InstallAsync.
            Changed(node);
            if (view.Current.RunMode == NodeRunMode.BinScripts && result.NewInstallDir is not null && view.Current.Version != targetVersion)
                await CarryAsync(node, view, result.NewInstallDir, cancellationToken).ConfigureAwait(false);
        }

        public async Task StopAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            // The stop reads the pid file and checks the process itself, so the view only has to name the install and home.
            var (view, at) = await ViewForChangeAsync(node, cancellationToken).ConfigureAwait(false);
            // The process exit is checked at the first poll interval, without back-off: the node is out of rotation.
            var result = await view.Steps.StopAsync(view.Current, new NodeStopOptions { Timeout = _timeouts.Stop, MaxPollInterval = WindowPollInterval }, cancellationToken).ConfigureAwait(false);
            _stopped[node.Name] = (view, at);
            _host.Verbose($"{node.Name}: {result.Summary}");
        }

        /// <summary>
        /// Checks the process only (the pid file in the node's home and whether that pid lives: what a full read decides
        /// "running" from) on the view the stop acted on, or on one fresh read when there is none; once it is gone, that
        /// view, now saying stopped, is what the install acts on.
        /// </summary>
        public async Task WaitProcessGoneAsync(NodeProfile node, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var fromStop = _stopped.TryRemove(node.Name, out var kept) && _clock.Since(kept.At) <= ReuseReadFor && kept.View.Current.HomeDir is not null;
            var (view, at) = fromStop ? kept : (await ReadFreshAsync(node, cancellationToken).ConfigureAwait(false), _clock.Timestamp);
            // The stop step returns only once it saw the process exit, a moment ago in this run: checking again would be
            // one or two more round trips while the node is out of rotation. Any other caller (a resumed run) checks.
            if (!fromStop)
            {
                var gone = await _clock.Poller.PollAsync(c => RunningPidAsync(view, c), pid => pid is null,
                    new PollOptions<int?>(timeout, WindowSchedule), cancellationToken).ConfigureAwait(false);
                if (!gone.Reached)
                    throw new BbException("NodeStopTimeout", BbErrorCategory.OperationTimeout,
                        $"Bitbucket on {node.Name} (pid {gone.Value}) still runs {timeout.TotalSeconds:0.#} s after the stop.", node.Name);
            }
            foreach (var i in view.All.Append(view.Current).Where(i => i.HomeDir is not null && SamePath(i.HomeDir, view.Current.HomeDir ?? "")))
                i.IsRunning = false;
            _lastRead[node.Name] = (view, at);
        }

        /// <summary>The pid in the home's pid file when that process lives, else null (as a full read decides it).</summary>
        private async Task<int?> RunningPidAsync(NodeView view, CancellationToken ct)
        {
            if (view.Current.HomeDir is null) return view.Current.IsRunning ? view.Current.ProcessId ?? 0 : (int?)null;
            var text = (await view.Ops.ReadFilesAsync(new[] { view.Ops.Combine(view.Current.HomeDir, _stepOptions.PidFile) }, ct).ConfigureAwait(false))[0];
            if (text is null || !int.TryParse(text.Trim(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var pid) || pid <= 0)
                return null;
            return await view.Ops.IsProcessAliveAsync(pid, ct).ConfigureAwait(false) ? pid : (int?)null;
        }

        public async Task InstallAsync(NodeProfile node, string targetVersion, CancellationToken cancellationToken)
        {
            // Usually the view of the wait for the process to go, a moment ago: the node was stopped then.
            var (view, _) = await ViewForChangeAsync(node, cancellationToken).ConfigureAwait(false);
            if (view.Current.Version == targetVersion) return; // already switched (a re-run after a crash)
            RequireStopped(node, view, "switch it to " + targetVersion);
            var target = view.All.FirstOrDefault(i => i.Version == targetVersion)
                ?? throw new BbException("UpgradeNotStaged", BbErrorCategory.ObjectNotFound,
                    $"{node.Name} has no install dir of {targetVersion} under {node.InstallRoot}: pre-stage it first.", node.Name);
            // Carrying the configuration now (a pre-stage killed before it carried) changes the target dir: its view
            // (home, configured) is then stale, and only a fresh read describes it.
            var carried = view.Current.RunMode != NodeRunMode.BinScripts || !target.IsConfigured;
            if (carried)
                await CarryAsync(node, view, target.InstallDir, cancellationToken).ConfigureAwait(false);
            Changed(node);
            if (view.Current.RunMode == NodeRunMode.BinScripts)
            {
                var recorded = await PointAtAsync(view, target.InstallDir, cancellationToken).ConfigureAwait(false);
                // The state file as the node has it after the write says the next start runs the target: that is the
                // switch, read back in the same round trip. The view stays for the engine's read-back and the start,
                // instead of reading every install dir again (a dozen shell calls while the node is out of rotation).
                if (!carried && target.HomeDir is not null && recorded is not null && SamePath(NodeMarker.Parse(recorded)["installDir"] ?? "", target.InstallDir))
                {
                    foreach (var i in view.All) i.IsRunning = false;
                    _installed[node.Name] = (new NodeView(view.Shell, view.Steps, view.Ops, target, view.All), _clock.Timestamp);
                }
            }
        }

        /// <summary>Same home, carried JVM/JRE/user settings and start flags into the new dir; for a service also repoints it.</summary>
        private async Task CarryAsync(NodeProfile node, NodeView view, string newInstallDir, CancellationToken cancellationToken)
        {
            var configured = await view.Steps.ConfigureAsync(view.Current, newInstallDir, null, cancellationToken).ConfigureAwait(false);
            foreach (var c in configured.Carried) _host.Verbose($"{node.Name}: carried {c}");
        }

        public async Task StartAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            // Usually the view the install's read-back took a moment ago; the start checks the pid file itself.
            var (view, _) = await ViewForChangeAsync(node, cancellationToken).ConfigureAwait(false);
            NodeStepResult result;
            try
            {
                result = await view.Steps.StartAsync(view.Current, new NodeStartOptions
                {
                    Timeout = _timeouts.Start,
                    // /status every first poll interval, without back-off: the node is out of rotation while this
                    // waits, and each check is one GET.
                    MaxPollInterval = WindowPollInterval,
                    StatusUri = Probe(node).StatusUri,
                    Transport = _transport,
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (BbException ex) when (ex.ErrorId == "NodeStartTimeout")
            {
                throw new BbException(ex.ErrorId, ex.Category, ex.Message + " " + SlowStartHint(node), node.Name, ex);
            }
            _host.Verbose($"{node.Name}: {result.Summary}");
        }

        public async Task WaitStatusRunningAsync(NodeProfile node, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var probe = Probe(node);
            var running = await _clock.Poller.PollAsync(probe.ReadAsync, status =>
            {
                if (status.IsRunning) return true;
                if (probe.Hopeless(status, node.Name) is { } hopeless) throw hopeless;
                return false;
            }, new PollOptions<NodeStatus>(timeout, WindowSchedule), cancellationToken).ConfigureAwait(false);
            if (!running.Reached)
                throw new BbException("NodeStartTimeout", BbErrorCategory.OperationTimeout,
                    $"{probe.StatusUri} did not answer RUNNING within {timeout.TotalSeconds:0.#} s (last seen: {running.Value}). {SlowStartHint(node)}", node.Name);
        }

        /// <summary>The interval of the waits while a node is out of rotation: the profile's first poll interval, not backed off.</summary>
        private TimeSpan WindowPollInterval => _timeouts.FirstPollInterval;
        private PollSchedule WindowSchedule => new PollSchedule(WindowPollInterval, WindowPollInterval, 1);

        private string SlowStartHint(NodeProfile node) =>
            $"If Bitbucket on {node.Name} is only slow to start, raise Timeouts.StartSeconds in the profile (now {_timeouts.Start.TotalSeconds:0.#} s).";

        public async Task RollBackAsync(NodeProfile node, string previousVersion, CancellationToken cancellationToken)
        {
            // A restore after a failure: always what the node shows now.
            var view = await ReadAsync(node, cancellationToken).ConfigureAwait(false);
            Changed(node);
            if (view.Current.Version == previousVersion) return;
            RequireStopped(node, view, "switch it back to " + previousVersion);
            var old = view.All.FirstOrDefault(i => i.Version == previousVersion)
                ?? throw new BbException("UpgradeRollbackDirMissing", BbErrorCategory.ObjectNotFound,
                    $"{node.Name} has no install dir of {previousVersion} under {node.InstallRoot} to go back to.", node.Name);
            if (view.Current.RunMode == NodeRunMode.BinScripts)
                await PointAtAsync(view, old.InstallDir, cancellationToken).ConfigureAwait(false);
            else
                await view.Ops.RepointServiceAsync(view.Current, view.Current.ServiceInstallDir ?? view.Current.InstallDir, old.InstallDir, cancellationToken).ConfigureAwait(false);
            _host.Verbose($"{node.Name}: pointed back at {old.InstallDir}");
        }

        // ------------------------------------------------------------------ the node as it is now

        private sealed class NodeView
        {
            public NodeView(INodeShell shell, NodeSteps steps, NodeOps ops, NodeInstallation current, IReadOnlyList<NodeInstallation> all)
            {
                Shell = shell;
                Steps = steps;
                Ops = ops;
                Current = current;
                All = all;
            }

            public INodeShell Shell { get; }
            public NodeSteps Steps { get; }
            public NodeOps Ops { get; }
            public NodeInstallation Current { get; }
            public IReadOnlyList<NodeInstallation> All { get; }
        }

        /// <summary>Reads the node (<see cref="ReadFreshAsync"/>) and keeps the view for the next change (<see cref="ViewForChangeAsync"/>).</summary>
        private async Task<NodeView> ReadAsync(NodeProfile node, CancellationToken ct)
        {
            var at = _clock.Timestamp;
            var view = await ReadFreshAsync(node, ct).ConfigureAwait(false);
            _lastRead[node.Name] = (view, at);
            return view;
        }

        /// <summary>
        /// The view a step that changes the node acts on: the one this host read last, if nothing was changed through it
        /// since and it is at most <see cref="ReuseReadFor"/> old, else a fresh read. Either way it is used up, as the
        /// step's change makes it stale. Safe because of what each such step re-checks itself: stop and start read the pid
        /// file and check the process; the install acts on a view whose process check (<see cref="WaitProcessGoneAsync"/>) found
        /// it gone. Reads that decide
        /// (where a node's upgrade stands, the install's read-back, a restore) always come from the node
        /// (<see cref="GetStateAsync"/>, <see cref="RollBackAsync"/>); each run starts with none kept, so a resumed run
        /// re-checks reality.
        /// </summary>
        private async Task<(NodeView View, long At)> ViewForChangeAsync(NodeProfile node, CancellationToken ct)
        {
            _stopped.TryRemove(node.Name, out _);
            _installed.TryRemove(node.Name, out _);   // the step about to run changes the node
            if (_lastRead.TryRemove(node.Name, out var last) && _clock.Since(last.At) <= ReuseReadFor) return last;
            var at = _clock.Timestamp;
            return (await ReadFreshAsync(node, ct).ConfigureAwait(false), at);
        }

        /// <summary>This host changed the node: no kept view describes it any more.</summary>
        private void Changed(NodeProfile node)
        {
            _lastRead.TryRemove(node.Name, out _);
            _stopped.TryRemove(node.Name, out _);
            _installed.TryRemove(node.Name, out _);
        }

        /// <summary>Reads every install dir under InstallRoot and decides which is current; always from the node itself (resume re-checks reality).</summary>
        private async Task<NodeView> ReadFreshAsync(NodeProfile node, CancellationToken ct)
        {
            var shell = await ShellAsync(node, ct).ConfigureAwait(false);
            var steps = new NodeSteps(shell, _stepOptions, _host, _clock.Poller);
            var ops = NodeOps.For(shell, _stepOptions);
            var names = await ops.ListAsync(node.InstallRoot, ct).ConfigureAwait(false);
            var dirs = names.Select(n => n.TrimEnd('/', '\\')).Where(n => InstallDirName.IsMatch(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
            if (dirs.Count == 0)
                throw new BbException("NodeInstallDirMissing", BbErrorCategory.ObjectNotFound,
                    $"{node.InstallRoot} on {shell.HostName} holds no atlassian-bitbucket-X.Y.Z install dir ({node.Place}.InstallRoot).", node.Name);
            var all = new List<NodeInstallation>();
            foreach (var d in dirs)
                all.Add(await steps.DiscoverAsync(ops.Combine(node.InstallRoot, d), ct).ConfigureAwait(false));

            NodeInstallation? current = null;
            var service = all.FirstOrDefault(i => i.RunMode != NodeRunMode.BinScripts && i.ServiceInstallDir is not null);
            if (service is not null)
                current = all.FirstOrDefault(i => SamePath(i.InstallDir, service.ServiceInstallDir!));
            else
            {
                var home = all.Select(i => i.HomeDir).FirstOrDefault(h => h is not null);
                var recorded = home is null ? null : NodeMarker.Parse((await ops.ReadFilesAsync(new[] { ops.Combine(home, NodeMarker.HomeStateName) }, ct).ConfigureAwait(false))[0])["installDir"];
                current = recorded is null ? null : all.FirstOrDefault(i => SamePath(i.InstallDir, recorded));
                // Never switched by the module: the original install is the one the module did not stage.
                current ??= all.Where(i => !i.IsStaged).OrderBy(i => i.Version, VersionOrder).FirstOrDefault();
            }
            if (current is null)
                throw new BbException("NodeInstallAmbiguous", BbErrorCategory.InvalidData,
                    $"Cannot tell which install dir under {node.InstallRoot} on {shell.HostName} is in use ({string.Join(", ", dirs)}).", node.Name);
            return new NodeView(shell, steps, ops, current, all);
        }

        /// <summary>Records (bin-script nodes) which install dir the next start runs, in the module's state file in BITBUCKET_HOME.</summary>
        /// <returns>The state file as read back after the write, or null where the platform only knows the write succeeded.</returns>
        private static Task<string?> PointAtAsync(NodeView view, string installDir, CancellationToken ct)
        {
            var home = view.Current.HomeDir ?? throw new BbException("NodeHomeMissing", BbErrorCategory.ObjectNotFound,
                $"BITBUCKET_HOME of {view.Current.InstallDir} on {view.Shell.HostName} is unknown.", view.Shell.HostName);
            return view.Ops.SetMarkerValueAsync(view.Ops.Combine(home, NodeMarker.HomeStateName), "installDir", installDir, ct);
        }

        private static void RequireStopped(NodeProfile node, NodeView view, string doing)
        {
            if (view.Current.IsRunning)
                throw new BbException("NodeStillRunning", BbErrorCategory.InvalidOperation,
                    $"Bitbucket on {node.Name} still runs (pid {view.Current.ProcessId}); stop it before you {doing}.", node.Name);
        }

        private async Task<bool> StatusRunningAsync(NodeProfile node, CancellationToken ct) =>
            (await Probe(node).ReadAsync(ct).ConfigureAwait(false)).IsRunning;

        /// <summary>The node's one /status probe (under its Url's context path, with the connection's TLS trust and proxy).</summary>
        private NodeStatusProbe Probe(NodeProfile node) => _probes.GetOrAdd(node.Name, _ => new NodeStatusProbe(node.Url, _transport));

        private Task<INodeShell> ShellAsync(NodeProfile node, CancellationToken ct) =>
            _shells.GetOrAdd(node.Name, _ => new Lazy<Task<INodeShell>>(() => _openShell(node, ct))).Value;

        private static bool SamePath(string a, string b) => string.Equals(a.TrimEnd('/', '\\'), b.TrimEnd('/', '\\'), StringComparison.Ordinal);

        private static readonly IComparer<string?> VersionOrder = Comparer<string?>.Create((x, y) =>
            Rules.BitbucketVersion.TryParse(x, out var a) && Rules.BitbucketVersion.TryParse(y, out var b) ? a!.CompareTo(b) : string.CompareOrdinal(x, y));

        private static bool IsNodeFailure(Exception ex) =>
            ex is BbException || ex is TimeoutException || ex is System.IO.IOException || ex is InvalidOperationException || ex is ArgumentException;

        public void Dispose()
        {
            foreach (var probe in _probes.Values) probe.Dispose();
            // Only shells that were opened; a shell still opening (or failed) is not waited for.
            foreach (var lazy in _shells.Values)
                if (lazy.IsValueCreated && lazy.Value.Status == TaskStatus.RanToCompletion) lazy.Value.GetAwaiter().GetResult().Dispose();
        }
    }
}
