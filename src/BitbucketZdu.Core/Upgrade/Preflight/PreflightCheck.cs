using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Preflight
{
    /// <summary>
    /// Proves a run can finish before anything changes: reads the cluster, every node's own view, every load balancer
    /// member, every node host and the archive, in parallel. Changes nothing.
    /// </summary>
    public sealed class PreflightCheck
    {
        private readonly UpgradePorts _ports;
        private readonly IOperationHost _host;

        public PreflightCheck(UpgradePorts ports, IOperationHost host)
        {
            _ports = ports;
            _host = host;
        }

        /// <param name="resume">True when the caller asked to resume: an unfinished run of this tool may be adopted.</param>
        /// <param name="adopt">
        /// True for -Adopt: like <paramref name="resume"/>, and an upgrade in progress with no journal run for it (the
        /// journal was lost) is taken over from the real state, unless that state is ambiguous.
        /// </param>
        public async Task<PreflightResult> RunAsync(ClusterProfile profile, bool resume, CancellationToken cancellationToken, bool adopt = false)
        {
            resume |= adopt;
            var started = _ports.Clock.Timestamp;
            var findings = new ConcurrentBag<(int order, PreflightFinding finding)>();
            var seq = 0;
            void Add(FindingSeverity s, string check, string? target, string? place, string message) =>
                findings.Add((Interlocked.Increment(ref seq), new PreflightFinding(s, check, target, place, message)));

            _host.Progress(new OperationProgress(ProgressActivities.Run, "Preflight " + profile.Name, "Reading the cluster, nodes, load balancers and archive"));

            // The credential is tried once, alone, before the probes that use it run in parallel: a wrong password is one
            // failed login, not one per node URL. Bitbucket asks for a CAPTCHA after a few failed logins, and until it is
            // answered in a browser that account's REST calls fail: a typo must not lock the admin out of the API the
            // upgrade needs. A refusal ends the preflight at once with the API's own error (ZduUnauthorized, ZduForbidden).
            var clusterTask = Try(() => _ports.Cluster.GetClusterAsync(cancellationToken));
            var (cluster, clusterError) = await clusterTask.ConfigureAwait(false);
            ThrowIfCredentialsRefused(clusterError, profile);
            var journalTask = Try(() => _ports.Journal.ReadAsync(profile.Name, cancellationToken));
            // The cluster URL did not answer at all: the node URLs are read one by one, so that the credential is still
            // tried once where the first of them answers.
            var viewsTask = cluster is not null
                ? Task.WhenAll(profile.Nodes.Select(n => Try(() => _ports.NodeApi(n).GetClusterAsync(cancellationToken))))
                : ReadViewsOneByOneAsync(profile, cancellationToken);
            var rotationTask = Task.WhenAll(profile.Nodes.Select(n => Try(() => _ports.Rotation.ProbeAsync(n, cancellationToken))));
            var hostTask = Task.WhenAll(profile.Nodes.Select(n => Try(() => _ports.Nodes.ProbeAsync(n, cancellationToken))));
            var archiveTask = CheckArchiveAsync(profile, Add, cancellationToken);
            var journalProbeTask = CheckJournalStoreAsync(profile, Add, cancellationToken);
            await Task.WhenAll(journalTask, viewsTask, rotationTask, hostTask, archiveTask, journalProbeTask).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();

            var views = await viewsTask.ConfigureAwait(false);
            foreach (var view in views) ThrowIfCredentialsRefused(view.error, profile);
            var rotations = await rotationTask.ConfigureAwait(false);
            var hosts = await hostTask.ConfigureAwait(false);
            var (journal, journalError) = await journalTask.ConfigureAwait(false);
            if (journalError is not null)
                Add(FindingSeverity.Error, "PreflightJournalUnreadable", _ports.Journal.Describe(profile.Name), profile.Journal is not null ? "Journal" : "JournalPath", journalError.Message);
            var lastRun = journal is null ? null : JournalRun.Last(journal);
            JournalRun? adopted = null;
            var continuing = false;
            var target = profile.TargetVersion;

            if (cluster is null)
            {
                Add(FindingSeverity.Error, "PreflightClusterUnreachable", profile.BaseUrl.ToString(), "BaseUrl",
                    $"Cannot read the cluster at {profile.BaseUrl}: {clusterError?.Message}");
            }
            else
            {
                adopted = CheckState(profile, cluster, lastRun, resume, Add,
                    adopt ? () => AdoptRealState(profile, cluster, rotations, hosts, _ports.Journal.Describe(profile.Name), Add) : null);
                // When only -Resume can go on (Test-BbClusterProfile, a run without it), the rest is checked as that
                // resume will check it: a node the killed run left out is not also reported as a capacity problem.
                continuing = adopted is not null || findings.Any(x => x.finding.Check == "PreflightResumeRequired");
                CheckVersions(profile, cluster, adopted, Add);
                CheckMembership(profile, cluster, continuing, Add);
                CheckCapacity(profile, cluster, continuing, Add);
            }

            CheckSshCarried(profile, Add);

            for (var i = 0; i < profile.Nodes.Count; i++)
            {
                var node = profile.Nodes[i];
                CheckView(profile, node, views[i], continuing, Add);
                CheckRotation(node, rotations[i], continuing, Add);
                CheckHost(profile, node, hosts[i], cluster, continuing, Add);
            }

            _host.Progress(new OperationProgress(ProgressActivities.Run, "Preflight " + profile.Name, "Done") { Completed = true });
            var ordered = findings.OrderBy(f => f.finding.Severity == FindingSeverity.Error ? 0 : f.finding.Severity == FindingSeverity.Warning ? 1 : 2)
                .ThenBy(f => f.order).Select(f => f.finding).ToList();
            if (ordered.All(f => f.Severity != FindingSeverity.Error))
                ordered.Add(new PreflightFinding(FindingSeverity.Info, "PreflightPassed", profile.Name, null,
                    adopted is null ? $"Every check passed: the cluster can be upgraded to {target}."
                        : $"Every check passed: run {adopted.RunId} of this tool can be resumed."));
            // Only an interrupted upgrade left nodes out; a node down on a STABLE cluster with no unfinished run is not one.
            var leftOut = new List<string>();
            if (cluster is not null && (cluster.UpgradeModeEnabled || lastRun is { Completed: false }))
                for (var i = 0; i < profile.Nodes.Count; i++)
                {
                    var node = profile.Nodes[i];
                    var api = NodeMatcher.Find(cluster.Nodes, node);
                    var rotation = KnownRotation(rotations[i]);
                    if (api?.State == NodeState.ACTIVE && (rotation is null || rotation == RotationState.InRotation)) continue;
                    leftOut.Add($"node {node.Name} is {(api is null ? "absent from the API" : api.StateText ?? api.State.ToString())}"
                        + (rotation is RotationState rs && rs != RotationState.InRotation ? $" and {rs} at the load balancer" : ""));
                }
            // A journal run of this tool for this target is continued with -Resume; without one only -Adopt takes over.
            var resumable = adopted is { IsFromRealState: false } || lastRun is { Completed: false } && lastRun.TargetVersion == target.ToString();
            var next = $"Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} {(resumable ? "-Resume" : "-Adopt")}";
            return new PreflightResult(ordered, cluster, adopted, _ports.Clock.Since(started), leftOut, next);
        }

        private async Task<(ZduCluster? value, Exception? error)[]> ReadViewsOneByOneAsync(ClusterProfile profile, CancellationToken ct)
        {
            var views = new (ZduCluster? value, Exception? error)[profile.Nodes.Count];
            for (var i = 0; i < views.Length; i++)
            {
                var node = profile.Nodes[i];
                views[i] = await Try(() => _ports.NodeApi(node).GetClusterAsync(ct)).ConfigureAwait(false);
                if (views[i].error is ZduApiException { CredentialsRefused: true })
                {
                    for (var j = i + 1; j < views.Length; j++) views[j] = (null, views[i].error);
                    break;
                }
            }
            return views;
        }

        /// <summary>A refused credential (401, 403) ends the preflight: nothing else is probed with it, and the error is the API's own.</summary>
        private void ThrowIfCredentialsRefused(Exception? error, ClusterProfile profile)
        {
            if (error is not ZduApiException { CredentialsRefused: true } refused) return;
            _host.Progress(new OperationProgress(ProgressActivities.Run, "Preflight " + profile.Name, "Done") { Completed = true });
            throw refused;
        }

        /// <summary>
        /// Git over SSH (TCP, port 7999 by default) needs a load balancer with a TCP mode. Some kinds cannot carry it, or
        /// this module cannot drain it there (<see cref="LoadBalancerKindDescriptor.SshNotCarried"/>: Apache
        /// mod_proxy_balancer is HTTP only, as Atlassian's KB on it for Bitbucket Data Center says; NGINX Plus's stream
        /// upstreams are not driven). When no load balancer in the profile can, the SSH clones reaching a node are not
        /// drained before it stops: say so, as a warning.
        /// </summary>
        private static void CheckSshCarried(ClusterProfile profile, Action<FindingSeverity, string, string?, string?, string> add)
        {
            if (profile.LoadBalancers.Count == 0) return;
            var reasons = new List<string>();
            foreach (var lb in profile.LoadBalancers)
            {
                if (LoadBalancerKinds.Find(lb.Kind)?.SshNotCarried is not string why) return; // this one can carry SSH
                reasons.Add($"{lb.Name} ({lb.Kind}): {why}");
            }
            add(FindingSeverity.Warning, "PreflightSshNotDrained", profile.Name, "LoadBalancers",
                $"No load balancer in the profile drains git over SSH ({string.Join("; ", reasons)}): "
                + "git over SSH (port 7999) reaches the nodes some other way and is NOT drained before a node stops, so SSH clones in flight on it may fail. "
                + "Put SSH behind a load balancer with a TCP mode (HAProxy tcp backend, NGINX stream upstream, an F5 pool, an ELB target group) and list it in the node's Members, or accept the risk.");
        }

        private static JournalRun? CheckState(ClusterProfile profile, ZduCluster cluster, JournalRun? lastRun, bool resume,
            Action<FindingSeverity, string, string?, string?, string> add, Func<JournalRun?>? adopt)
        {
            var ours = lastRun is not null && !lastRun.Completed && lastRun.TargetVersion == profile.TargetVersion.ToString();
            var state = cluster.StateText ?? cluster.State.ToString();
            // A run killed after its approve landed (during finalize, the wait for STABLE, or before run-completed):
            // its work is done or finishing. A resume says so and succeeds instead of refusing an upgrade to the version
            // the cluster already runs.
            if (resume && IsApproved(profile, cluster) && (lastRun is not null && lastRun.TargetVersion == profile.TargetVersion.ToString()
                    || adopt is not null && cluster.State == ClusterState.RUNNING_UPGRADE_TASKS))
            {
                var who = lastRun is null ? $"The upgrade to {profile.TargetVersion} (no journal run of it)" : $"Run {lastRun.RunId}";
                add(FindingSeverity.Info, "PreflightAlreadyDone", profile.Name, null, cluster.State == ClusterState.STABLE
                    ? $"{who} had already done the work: the cluster is STABLE and every node runs {profile.TargetVersion}; the resumed run only records that it completed."
                    : $"{who} had already finalized: every node runs {profile.TargetVersion} and the finalization tasks run (RUNNING_UPGRADE_TASKS); the resumed run waits for STABLE.");
                return lastRun ?? JournalRun.FromRealState("adopted", profile.TargetVersion.ToString(), profile.TargetVersion.ToString(), profile.Nodes.Select(n => n.Name).ToList());
            }
            switch (cluster.State)
            {
                case ClusterState.STABLE when !cluster.UpgradeModeEnabled:
                    if (ours && resume)
                    {
                        add(FindingSeverity.Info, "PreflightResuming", profile.Name, null, $"Resuming run {lastRun!.RunId} (last step: {lastRun.LastEntry.Step ?? lastRun.LastEntry.Kind}); the cluster is STABLE.");
                        return lastRun;
                    }
                    if (lastRun is not null && !lastRun.Completed)
                        add(FindingSeverity.Warning, "PreflightUnfinishedRun", profile.Name, "JournalPath",
                            $"Run {lastRun.RunId} of this tool did not finish (last step: {lastRun.LastEntry.Step ?? lastRun.LastEntry.Kind}); the cluster is STABLE, so a fresh run starts.");
                    else if (resume)
                        add(FindingSeverity.Info, "PreflightNothingToResume", profile.Name, "JournalPath",
                            "The journal holds no unfinished run for this target; a fresh run starts.");
                    return null;
                case ClusterState.MIXED when !cluster.UpgradeModeEnabled:
                    // The vendor procedure describes MIXED with upgrade mode off when a node is in ERROR (zdu-api.md §2 says STABLE).
                    add(FindingSeverity.Error, "PreflightClusterState", profile.BaseUrl.ToString(), null,
                        "The cluster is MIXED with upgrade mode off: a node is in ERROR or runs another version. Fix or remove that node; upgrade mode cannot be enabled until then.");
                    return null;
                case ClusterState.READY_TO_UPGRADE:
                case ClusterState.MIXED:
                case ClusterState.READY_TO_RUN_UPGRADE_TASKS:
                    if (ours && lastRun!.StartedUpgradeMode)
                    {
                        if (resume)
                        {
                            add(FindingSeverity.Info, "PreflightResuming", profile.Name, null,
                                $"Resuming run {lastRun.RunId}: the cluster is {state} with upgrade mode started by that run (last step: {lastRun.LastEntry.Step ?? lastRun.LastEntry.Kind}).");
                            return lastRun;
                        }
                        add(FindingSeverity.Error, "PreflightResumeRequired", profile.Name, null,
                            $"Run {lastRun.RunId} of this tool left the cluster in {state} (last step: {lastRun.LastEntry.Step ?? lastRun.LastEntry.Kind}). Run Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} -Resume to continue it.");
                        return null;
                    }
                    if (lastRun is not null && !lastRun.Completed && lastRun.StartedUpgradeMode)
                    {
                        add(FindingSeverity.Error, "PreflightTargetChanged", profile.Name, "TargetVersion",
                            $"Run {lastRun.RunId} of this tool enabled upgrade mode for {lastRun.TargetVersion} but the profile now targets {profile.TargetVersion}. Set TargetVersion back to {lastRun.TargetVersion} and resume.");
                        return null;
                    }
                    if (adopt is not null) return adopt();
                    add(FindingSeverity.Error, "PreflightUpgradeNotOurs", profile.BaseUrl.ToString(), null,
                        $"An upgrade is in progress that the journal has no run of: the cluster is {state} with upgrade mode on (original version {cluster.OriginalVersion ?? "unknown"}). "
                        + $"If this tool started it and its journal was lost, Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} -Adopt takes it over from the real state "
                        + "(node versions, rotation at the load balancer, upgrade mode) after showing what it found; add -WhatIf to see that first. "
                        + "Otherwise finish it or cancel it while no node is upgraded (Disable-BbUpgradeMode, or Administration > Rolling upgrade).");
                    return null;
                default:
                    add(FindingSeverity.Error, "PreflightClusterState", profile.BaseUrl.ToString(), null,
                        $"The cluster is {state}{(cluster.UpgradeModeEnabled ? " with upgrade mode on" : "")}: a rolling upgrade needs STABLE. "
                        + (cluster.State == ClusterState.UPGRADE_TASKS_FAILED ? "Finalization tasks failed: retry them with Resume-BbUpgradeTask, or contact Atlassian support." : "Wait until it is STABLE."));
                    return null;
            }
        }

        /// <summary>
        /// -Adopt with no journal run: decides from the real state which nodes are done, which one an interrupted run left
        /// out (finished first) and which are still to do. Refuses (adopts nothing) where that cannot be told.
        /// </summary>
        private static JournalRun? AdoptRealState(ClusterProfile profile, ZduCluster cluster, (RotationProbe? value, Exception? error)[] rotations,
            (NodeHostProbe? value, Exception? error)[] hosts, string journal, Action<FindingSeverity, string, string?, string?, string> add)
        {
            var target = profile.TargetVersion.ToString();
            var state = cluster.StateText ?? cluster.State.ToString();
            if (!BitbucketVersion.TryParse(cluster.OriginalVersion, out var original))
            {
                add(FindingSeverity.Error, "PreflightAdoptUnknownOriginal", profile.BaseUrl.ToString(), null,
                    $"Cannot adopt: the cluster is {state} but the API gives no original version ('{cluster.OriginalVersion ?? "nothing"}'), so which nodes are still to upgrade cannot be told. "
                    + "Check Administration > Rolling upgrade and GET /rest/zdu/cluster.");
                return null;
            }
            var done = new List<string>();
            var outNodes = new List<(NodeProfile node, string what)>();
            var todo = new List<string>();
            var found = new List<string>();
            var refused = false;
            for (var i = 0; i < profile.Nodes.Count; i++)
            {
                var node = profile.Nodes[i];
                var api = NodeMatcher.Find(cluster.Nodes, node);
                var rotation = KnownRotation(rotations[i]);
                var installed = hosts[i].value is { Reachable: true } h ? h.InstalledVersion : null;
                var version = api?.Version ?? installed;
                var apiState = api is null ? "absent from the API" : api.StateText ?? api.State.ToString();
                var rotationText = node.Members.Count == 0 ? "no load balancer" : rotation?.ToString() ?? "rotation unknown";
                var what = $"{apiState} on {version ?? "an unknown version"}{(installed is not null && installed != api?.Version ? $" (install dir {installed})" : "")}, {rotationText}";
                if (version is null)
                {
                    add(FindingSeverity.Error, "PreflightAdoptNodeUnknown", node.Name, node.Place,
                        $"Cannot adopt: which version node {node.Name} runs cannot be told ({what}; its host: {hosts[i].error?.Message ?? hosts[i].value?.Problem ?? "no answer"}). Check that its remoting works and what its install dir is.");
                    refused = true;
                    continue;
                }
                if (version != target && version != original!.ToString())
                {
                    add(FindingSeverity.Error, "PreflightAdoptUnknownVersion", node.Name, node.Place,
                        $"Cannot adopt: node {node.Name} runs {version}, neither the original {original} nor the target {target} (TargetVersion in {profile.Source ?? "the profile"}). "
                        + "Check TargetVersion and what is installed on the node.");
                    refused = true;
                    continue;
                }
                var inRotation = node.Members.Count == 0 || rotation == RotationState.InRotation;
                var active = api?.State == NodeState.ACTIVE;
                if (active && inRotation && version == target)
                {
                    done.Add(node.Name);
                    found.Add($"{node.Name}: {what}: done");
                }
                else if (active && inRotation)
                {
                    todo.Add(node.Name);
                    found.Add($"{node.Name}: {what}: to upgrade");
                }
                else
                {
                    outNodes.Add((node, what));
                    found.Add($"{node.Name}: {what}: left out by the interrupted run, finished first");
                }
            }
            // An interrupted run leaves at most one batch out (-MaxUnavailable; one node by default).
            var batch = Math.Max(1, profile.MaxUnavailable);
            if (outNodes.Count > batch)
            {
                add(FindingSeverity.Error, "PreflightAdoptAmbiguous", profile.BaseUrl.ToString(), "Nodes",
                    $"Cannot adopt: {outNodes.Count} nodes are out ({string.Join("; ", outNodes.Select(o => $"{o.node.Name}: {o.what}"))}); an interrupted run leaves at most {(batch == 1 ? "one" : batch + " (-MaxUnavailable " + batch + ")")} out, "
                    + $"so which {(batch == 1 ? "one" : "ones")} it was upgrading cannot be told. Check them (Administration > Clustering, the load balancer), start and put back all but {(batch == 1 ? "one" : batch.ToString(System.Globalization.CultureInfo.InvariantCulture))}, then run with -Adopt again"
                    + (batch == 1 ? " (or with the -MaxUnavailable the interrupted run had)." : "."));
                refused = true;
            }
            if (refused) return null;

            // Done nodes first (skipped), then the node left out, then the rest least busy first.
            var byLoad = UpgradePlanner.Order(profile, cluster).Select(n => n.Name).ToList();
            var order = done.Concat(outNodes.Select(o => o.node.Name)).Concat(byLoad.Where(todo.Contains)).ToList();
            var will = new List<string>();
            if (outNodes.Count >= 1) will.Add($"finish node{(outNodes.Count == 1 ? "" : "s")} {string.Join(", ", outNodes.Select(o => o.node.Name))}");
            var rest = byLoad.Where(todo.Contains).ToList();
            if (rest.Count > 0) will.Add($"upgrade {string.Join(", then ", rest)} " + (batch == 1 ? "one at a time" : $"up to {batch} at a time"));
            will.Add($"finalize and wait for STABLE on {target}");
            add(FindingSeverity.Info, "PreflightAdopting", profile.Name, null,
                $"Adopting the upgrade in progress from the real state (the journal {journal} has no run of it). Found: the cluster is {state} with upgrade mode on, original version {original}; "
                + string.Join("; ", found) + $". Will: {string.Join(", then ", will)}.");
            return JournalRun.FromRealState("adopted", original!.ToString(), target, order);
        }

        /// <summary>What the load balancer says of a node, or null when it could not be asked or has no such member.</summary>
        private static RotationState? KnownRotation((RotationProbe? value, Exception? error) probe) =>
            probe.value is { Reachable: true, MemberFound: true } r ? r.State : null;

        /// <summary>Upgrade mode off with every profile node ACTIVE on the target: STABLE, or the finalization tasks still running.</summary>
        internal static bool IsApproved(ClusterProfile profile, ZduCluster cluster) =>
            !cluster.UpgradeModeEnabled && (cluster.State == ClusterState.STABLE || cluster.State == ClusterState.RUNNING_UPGRADE_TASKS)
            && AllProfileNodesOn(profile, cluster, profile.TargetVersion.ToString());

        internal static bool AllProfileNodesOn(ClusterProfile profile, ZduCluster cluster, string version) =>
            profile.Nodes.All(n => NodeMatcher.Find(cluster.Nodes, n) is ZduNode api && api.State == NodeState.ACTIVE && api.Version == version);

        private static void CheckVersions(ClusterProfile profile, ZduCluster cluster, JournalRun? adopted,
            Action<FindingSeverity, string, string?, string?, string> add)
        {
            var live = cluster.Nodes.Where(n => n.State != NodeState.OFFLINE && n.Version is not null).ToList();
            var baseText = cluster.OriginalVersion ?? adopted?.FromVersion ?? live.Select(n => n.Version).FirstOrDefault();
            if (adopted is null && !cluster.UpgradeModeEnabled && live.Select(n => n.Version).Distinct().Count() > 1)
            {
                add(FindingSeverity.Error, "PreflightMixedVersions", profile.BaseUrl.ToString(), null,
                    "The nodes run different versions (" + string.Join(", ", live.Select(n => $"{n.Name} {n.Version}")) + ") although the cluster is not in upgrade mode.");
                return;
            }
            if (!BitbucketVersion.TryParse(baseText, out var current))
            {
                add(FindingSeverity.Error, "PreflightUnknownVersion", profile.BaseUrl.ToString(), null, $"Cannot tell the cluster's version (API says '{baseText ?? "nothing"}').");
                return;
            }
            var target = profile.TargetVersion;
            if (adopted is not null && live.Count > 0 && live.All(n => n.Version == target.ToString())
                && (cluster.State == ClusterState.STABLE || cluster.State == ClusterState.RUNNING_UPGRADE_TASKS) && !cluster.UpgradeModeEnabled)
            {
                add(FindingSeverity.Info, "PreflightAlreadyOnTarget", profile.BaseUrl.ToString(), "TargetVersion", $"Every node already runs {target}; the resumed run only completes the journal.");
                return;
            }
            var why = current!.WhyNotUpgradableTo(target);
            if (why is null)
            {
                add(FindingSeverity.Info, "PreflightVersion", profile.BaseUrl.ToString(), "TargetVersion", $"{current} -> {target}: a bug-fix upgrade of the {current.Line} line.");
                return;
            }
            add(FindingSeverity.Error, VersionErrorId(current, target), profile.BaseUrl.ToString(), "TargetVersion", why);
        }

        /// <summary>Why a move from <paramref name="current"/> to <paramref name="target"/> is refused, as an ErrorId.</summary>
        internal static string VersionErrorId(BitbucketVersion current, BitbucketVersion target) =>
            target.Major != current.Major || target.Minor != current.Minor ? "PreflightNotBugfixUpgrade"
                : target.Bugfix == current.Bugfix ? "PreflightAlreadyOnTarget" : "PreflightDowngrade";

        private static void CheckMembership(ClusterProfile profile, ZduCluster cluster, bool adopting,
            Action<FindingSeverity, string, string?, string?, string> add)
        {
            foreach (var node in profile.Nodes)
            {
                var api = NodeMatcher.Find(cluster.Nodes, node);
                var place = node.Place + (string.IsNullOrEmpty(node.ApiAddress) ? ".Name" : ".ApiAddress");
                if (api is null)
                {
                    add(FindingSeverity.Error, "PreflightNodeNotInCluster", node.Name, place,
                        $"The cluster API at {profile.BaseUrl} knows no node '{node.ApiAddress ?? node.Name}'; it reports: {Describe(cluster.Nodes)}.");
                    continue;
                }
                if (api.State != NodeState.ACTIVE)
                    add(adopting ? FindingSeverity.Warning : FindingSeverity.Error, "PreflightNodeNotActive", node.Name, node.Place,
                        $"Node {node.Name} is {api.StateText ?? api.State.ToString()}, not ACTIVE." + (adopting ? " The resumed run re-checks it." : " Every node must be ACTIVE before a rolling upgrade."));
            }
            foreach (var extra in NodeMatcher.Unmatched(cluster.Nodes, profile.Nodes))
                add(FindingSeverity.Error, "PreflightNodeNotInProfile", extra.Name ?? extra.Address, "Nodes",
                    $"The cluster has node {extra.Name ?? "?"} ({extra.Address ?? "no address"}) that the profile does not list: it would stay on the old version and block finalizing. Add it to Nodes.");
        }

        /// <summary>
        /// Capacity guards taking a NEW node out. A resumed run first finishes (or restores) the one node the killed run
        /// left out, which adds capacity, so that node is not counted against it; only a second node out is refused.
        /// </summary>
        private static void CheckCapacity(ClusterProfile profile, ZduCluster cluster, bool adopting, Action<FindingSeverity, string, string?, string?, string> add)
        {
            var live = cluster.Nodes.Count(n => n.State == NodeState.ACTIVE);
            var outNow = profile.Nodes.Where(n => NodeMatcher.Find(cluster.Nodes, n) is not ZduNode api || api.State != NodeState.ACTIVE).ToList();
            var batch = Math.Max(1, profile.MaxUnavailable);
            if (adopting && outNow.Count == 1 && live >= 1)
            {
                add(FindingSeverity.Info, "PreflightCapacity", outNow[0].Name, outNow[0].Place,
                    $"Node {outNow[0].Name} is out (left by the interrupted run); the resumed run finishes it and puts it back before it takes any other node out.");
                live++;
            }
            else if (adopting && outNow.Count > 1 && outNow.Count <= batch && live >= 1)
            {
                // A run killed mid-batch (-MaxUnavailable) leaves up to a batch out: the resumed run finishes them first, as one batch.
                add(FindingSeverity.Info, "PreflightCapacity", outNow[0].Name, outNow[0].Place,
                    $"Nodes {string.Join(", ", outNow.Select(n => n.Name))} are out (left by the interrupted run's batch); the resumed run finishes them and puts them back before it takes any other node out.");
                live += outNow.Count;
            }
            else if (adopting && outNow.Count > 1)
            {
                add(FindingSeverity.Error, "PreflightCapacity", profile.BaseUrl.ToString(), "Nodes",
                    $"{outNow.Count} nodes are not ACTIVE ({string.Join(", ", outNow.Select(n => n.Name))}); an interrupted run leaves at most {batch} out (-MaxUnavailable {batch}). "
                    + "Start the others and check the cluster (Administration > Clustering) before resuming, or resume with the -MaxUnavailable the interrupted run had.");
                return;
            }
            if (live < 2)
            {
                add(FindingSeverity.Error, "PreflightCapacity", profile.BaseUrl.ToString(), "Nodes",
                    $"Only {live} node{(live == 1 ? " is" : "s are")} ACTIVE: with one node out nobody would serve users.");
                return;
            }
            if (profile.MaxUsersPerNode is int max)
            {
                var users = cluster.Nodes.Sum(n => n.ActiveUserCount ?? 0);
                var serving = Math.Max(0, live - batch);
                var capacity = serving * max;
                var outText = batch == 1 ? "one node is out" : $"a batch of {batch} nodes is out (-MaxUnavailable)";
                if (users > capacity)
                    add(FindingSeverity.Error, "PreflightCapacity", profile.BaseUrl.ToString(), "MaxUsersPerNode",
                        $"{users} active users but {serving} nodes serve at most {capacity} ({max} each) while {outText}. Upgrade at a quieter time or raise MaxUsersPerNode"
                        + (batch == 1 ? "." : ", or lower -MaxUnavailable."));
                else
                    add(FindingSeverity.Info, "PreflightCapacity", profile.BaseUrl.ToString(), "MaxUsersPerNode", $"{users} active users fit on {serving} nodes ({capacity} max) while {outText}.");
            }
        }

        private static void CheckView(ClusterProfile profile, NodeProfile node, (ZduCluster? value, Exception? error) view, bool adopting,
            Action<FindingSeverity, string, string?, string?, string> add)
        {
            if (view.value is null)
            {
                add(adopting ? FindingSeverity.Warning : FindingSeverity.Error, "PreflightNodeApiUnreachable", node.Name, node.Place + ".Url",
                    $"Cannot read the cluster from node {node.Name}'s own URL {node.Url}: {view.error?.Message}" + (adopting ? " The resumed run re-checks it." : ""));
                return;
            }
            foreach (var other in profile.Nodes)
            {
                var seen = NodeMatcher.Find(view.value.Nodes, other);
                if (seen is null || seen.State != NodeState.ACTIVE)
                    add(adopting ? FindingSeverity.Warning : FindingSeverity.Error, "PreflightNodeNotSeen", node.Name, node.Place,
                        $"Node {node.Name} does not see {other.Name} ACTIVE (it sees {(seen is null ? "no such node" : seen.StateText ?? seen.State.ToString())}): the cluster may be split.");
            }
        }

        private static void CheckRotation(NodeProfile node, (RotationProbe? value, Exception? error) probe, bool adopting,
            Action<FindingSeverity, string, string?, string?, string> add)
        {
            if (node.Members.Count == 0) return;
            var place = node.Members[0].Place;
            var p = probe.value;
            if (p is null || !p.Reachable)
            {
                add(FindingSeverity.Error, "PreflightLoadBalancerUnreachable", node.Name, place,
                    $"Cannot reach the load balancer of node {node.Name} ({string.Join(", ", node.Members)}): {probe.error?.Message ?? p?.Problem}");
                return;
            }
            if (!p.MemberFound)
            {
                add(FindingSeverity.Error, "PreflightMemberNotFound", node.Name, place, $"Member {string.Join(", ", node.Members)} of node {node.Name} was not found. {p.Problem}".TrimEnd());
                return;
            }
            if (p.State != RotationState.InRotation)
                add(adopting ? FindingSeverity.Info : FindingSeverity.Warning, "PreflightNodeOutOfRotation", node.Name, place,
                    $"Node {node.Name} is {p.State} at the load balancer{(adopting ? "; the resumed run puts it back." : ": the cluster already runs with less capacity.")}");
            // A resumed run may find another node out of rotation mid-upgrade (the killed run left it there): that node is
            // finished and put back before this one is taken out, so the shortage now is not one at take-out time.
            if (p.OtherHealthyMembers < 1)
                add(adopting ? FindingSeverity.Warning : FindingSeverity.Error, "PreflightCapacity", node.Name, place,
                    $"With node {node.Name} out of rotation no other healthy member would serve users"
                    + (adopting ? " now; the resumed run first finishes and puts back the node that is out." : "."));
        }

        private static void CheckHost(ClusterProfile profile, NodeProfile node, (NodeHostProbe? value, Exception? error) probe, ZduCluster? cluster, bool adopting,
            Action<FindingSeverity, string, string?, string?, string> add)
        {
            var p = probe.value;
            if (p is null || !p.Reachable)
            {
                add(FindingSeverity.Error, "PreflightRemotingUnreachable", node.Name, node.Place + ".Remoting",
                    $"Cannot run commands on node {node.Name} ({node.RemotingTarget}): {probe.error?.Message ?? p?.Problem}");
                return;
            }
            if (p.FreeDiskBytes is long free && free < profile.MinFreeDiskBytes)
                add(FindingSeverity.Error, "PreflightDiskSpace", node.Name, node.Place + ".InstallRoot",
                    $"Node {node.Name} has {free / 1048576} MiB free under {node.InstallRoot}; the new install dir needs at least {profile.MinFreeDiskBytes / 1048576} MiB.");
            var api = cluster is null ? null : NodeMatcher.Find(cluster.Nodes, node);
            if (!adopting && api?.Version is string v && p.InstalledVersion is string installed && v != installed)
                add(FindingSeverity.Warning, "PreflightVersionMismatch", node.Name, node.Place + ".InstallRoot",
                    $"Node {node.Name} runs {v} according to the API but its current install dir under {node.InstallRoot} is {installed}.");
        }

        /// <summary>A store that can prove it is usable (the Azure blob store) does so: reachable, writable, lease can be taken.</summary>
        private async Task CheckJournalStoreAsync(ClusterProfile profile, Action<FindingSeverity, string, string?, string?, string> add, CancellationToken ct)
        {
            if (_ports.Journal is not IJournalProbe probe) return;
            var where = _ports.Journal.Describe(profile.Name);
            var place = profile.Journal is not null ? "Journal" : null;
            try
            {
                add(FindingSeverity.Info, "PreflightJournal", where, place, await probe.ProbeAsync(profile.Name, ct).ConfigureAwait(false));
            }
            catch (BbException ex) when (ex.ErrorId == "JournalLocked")
            {
                add(FindingSeverity.Warning, "PreflightJournalLocked", where, place, ex.Message);
            }
            catch (BbException ex)
            {
                add(FindingSeverity.Error, "PreflightJournalUnwritable", where, place, $"{ex.Message} ({ex.ErrorId})");
            }
        }

        private static async Task CheckArchiveAsync(ClusterProfile profile, Action<FindingSeverity, string, string?, string?, string> add, CancellationToken ct)
        {
            var archive = profile.Archive;
            if (archive.IsUrl)
            {
                add(FindingSeverity.Info, "PreflightArchive", archive.Location, "Archive.Url", "The archive is a URL: each node verifies its SHA-256 while pre-staging.");
                return;
            }
            if (!File.Exists(archive.Location))
            {
                add(FindingSeverity.Error, "PreflightArchiveMissing", archive.Location, "Archive.Path", $"The release archive {archive.Location} does not exist.");
                return;
            }
            try
            {
                var actual = await Task.Run(() => Sha256Of(archive.Location), ct).ConfigureAwait(false);
                if (!string.Equals(actual, archive.Sha256, StringComparison.OrdinalIgnoreCase))
                    add(FindingSeverity.Error, "PreflightArchiveChecksum", archive.Location, "Archive.Sha256",
                        $"The SHA-256 of {archive.Location} is {actual}, not {archive.Sha256}: the file is damaged or not the release you meant.");
                else
                    add(FindingSeverity.Info, "PreflightArchive", archive.Location, "Archive.Sha256", "The archive's SHA-256 matches.");
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                add(FindingSeverity.Error, "PreflightArchiveMissing", archive.Location, "Archive.Path", $"Cannot read {archive.Location}: {ex.Message}");
            }
        }

        /// <summary>Lower-case hex SHA-256 of a file.</summary>
        public static string Sha256Of(string path)
        {
            using var sha = SHA256.Create();
            using var fs = File.OpenRead(path);
            return string.Concat(sha.ComputeHash(fs).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
        }

        private static string Describe(IEnumerable<ZduNode> nodes)
        {
            var list = nodes.Select(n => $"{n.Name ?? "?"} ({n.Address ?? "no address"}, {n.StateText ?? n.State.ToString()})").ToList();
            return list.Count == 0 ? "no nodes" : string.Join(", ", list);
        }

        private static async Task<(T? value, Exception? error)> Try<T>(Func<Task<T>> probe) where T : class
        {
            try
            {
                return (await probe().ConfigureAwait(false), null);
            }
            catch (OperationCanceledException)
            {
                throw;
            }
            catch (Exception ex)
            {
                return (null, ex);
            }
        }
    }
}
