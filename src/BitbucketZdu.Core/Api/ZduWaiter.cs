using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Api
{
    /// <summary>Adaptive polling: short at first, growing by <see cref="Factor"/> up to <see cref="MaxInterval"/>, back to short when something changes.</summary>
    public sealed class ZduPollOptions
    {
        public TimeSpan InitialInterval { get; set; } = TimeSpan.FromSeconds(1);
        public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(10);
        public double Factor { get; set; } = 1.5;

        /// <summary>The clock the wait runs on (real time; tests pass a virtual one).</summary>
        public Poller Poller { get; set; } = Poller.System;
    }

    /// <summary>
    /// Which node to follow. Ids may change when a node restarts, so a node is found by IP address (and port when
    /// known) first, then by name, and by id only when nothing else is given.
    /// </summary>
    public sealed class ZduNodeSelector
    {
        public string? Id { get; set; }
        public string? Name { get; set; }
        public string? IpAddress { get; set; }
        public int? PortNumber { get; set; }

        public static ZduNodeSelector From(ZduNode node) =>
            new ZduNodeSelector { Id = node.Id, Name = node.Name, IpAddress = node.IpAddress, PortNumber = node.PortNumber };

        public ZduNode? FindIn(ZduCluster cluster)
        {
            if (!string.IsNullOrEmpty(IpAddress))
            {
                var byIp = cluster.Nodes.Where(n => string.Equals(n.IpAddress, IpAddress, StringComparison.OrdinalIgnoreCase)).ToArray();
                if (PortNumber is int port && byIp.Any(n => n.PortNumber == port)) byIp = byIp.Where(n => n.PortNumber == port).ToArray();
                if (byIp.Length > 1 && Name is not null && byIp.Any(n => SameName(n))) byIp = byIp.Where(SameName).ToArray();
                if (byIp.Length > 0) return byIp.OrderBy(n => n.State == NodeState.OFFLINE ? 1 : 0).First();
                if (Name is null) return null;
            }
            if (!string.IsNullOrEmpty(Name))
            {
                var byName = cluster.Nodes.Where(SameName).OrderBy(n => n.State == NodeState.OFFLINE ? 1 : 0).FirstOrDefault();
                if (byName is not null || IpAddress is not null) return byName;
            }
            return string.IsNullOrEmpty(Id) ? null : cluster.Nodes.FirstOrDefault(n => string.Equals(n.Id, Id, StringComparison.Ordinal));
        }

        private bool SameName(ZduNode n) => string.Equals(n.Name, Name, StringComparison.OrdinalIgnoreCase);

        public override string ToString()
        {
            var address = IpAddress is null ? null : PortNumber is int p ? IpAddress + ":" + p : IpAddress;
            if (Name is not null && address is not null) return $"{Name} ({address})";
            return Name ?? address ?? Id ?? "(no node given)";
        }
    }

    /// <summary>Where one waited-for node ended up.</summary>
    public sealed class ZduNodeWaitResult
    {
        internal ZduNodeWaitResult(ZduNodeSelector selector) => Selector = selector;

        public ZduNodeSelector Selector { get; }
        /// <summary>The node as last read; null while it is absent from the cluster.</summary>
        public ZduNode? Node { get; internal set; }
        public bool Reached { get; internal set; }
        /// <summary>The state last seen ("ACTIVE on 8.19.4", "absent from the cluster"), and the last read error if the last read failed.</summary>
        public string LastSeen => LastError is null ? LastState : $"{LastState} (the last read failed: {LastError})";

        internal string LastState { get; set; } = "not read yet";
        internal string? LastError { get; set; }
    }

    /// <summary>Polls GET /rest/zdu/cluster until the cluster or nodes reach wanted states, with a deadline and progress.</summary>
    public static class ZduWaiter
    {
        public const string TimeoutErrorId = "ZduWaitTimeout";

        public static async Task<ZduCluster> WaitForClusterStateAsync(IZduClient client, IReadOnlyCollection<ClusterState> states, TimeSpan timeout,
            IOperationHost host, ZduPollOptions? poll = null, CancellationToken cancellationToken = default)
        {
            if (states is null || states.Count == 0) throw new ArgumentException("Give at least one state to wait for.", nameof(states));
            var wanted = string.Join(" or ", states);
            var activity = $"Waiting for the cluster to be {wanted}";
            string lastState = "not read yet";
            string? lastError = null;
            ZduCluster? result = null;
            var reached = await PollAsync(client, timeout, host, poll, activity, cluster =>
            {
                lastState = ZduStateRules.DescribeCluster(cluster);
                lastError = null;
                var done = states.Contains(cluster.State);
                if (done) result = cluster;
                return (done, cluster.StateText ?? cluster.State.ToString(), lastState);
            }, error => lastError = error, cancellationToken).ConfigureAwait(false);
            if (reached) return result!;
            var lastSeen = lastError is null ? lastState : $"{lastState} The last read failed: {lastError}";
            throw new BbException(TimeoutErrorId, BbErrorCategory.OperationTimeout,
                $"The cluster at {client.BaseUri} did not become {wanted} within {timeout.TotalSeconds:0.#} s. Last seen: {lastSeen}", client.BaseUri);
        }

        /// <summary>
        /// Waits until every node is in one of <paramref name="states"/> (a node absent from the cluster counts as
        /// OFFLINE). <paramref name="onReached"/> is called once per node as it arrives. Returns every node's result;
        /// the caller reports those not reached (see <see cref="TimeoutError"/>).
        /// </summary>
        public static async Task<IReadOnlyList<ZduNodeWaitResult>> WaitForNodeStatesAsync(IZduClient client, IReadOnlyList<ZduNodeSelector> nodes,
            IReadOnlyCollection<NodeState> states, TimeSpan timeout, IOperationHost host, Action<ZduNodeWaitResult>? onReached = null,
            ZduPollOptions? poll = null, CancellationToken cancellationToken = default)
        {
            if (states is null || states.Count == 0) throw new ArgumentException("Give at least one state to wait for.", nameof(states));
            var results = nodes.Select(n => new ZduNodeWaitResult(n)).ToArray();
            if (results.Length == 0) return results;
            var wanted = string.Join(" or ", states);
            var activity = results.Length == 1 ? $"Waiting for node {results[0].Selector} to be {wanted}" : $"Waiting for {results.Length} nodes to be {wanted}";
            await PollAsync(client, timeout, host, poll, activity, cluster =>
            {
                foreach (var r in results.Where(r => !r.Reached))
                {
                    var node = r.Selector.FindIn(cluster);
                    r.Node = node ?? r.Node;
                    r.LastError = null;
                    r.LastState = node is null ? "absent from the cluster" : (node.StateText ?? node.State.ToString()) + (node.Version is null ? "" : " on " + node.Version);
                    if (node is null ? states.Contains(NodeState.OFFLINE) : states.Contains(node.State))
                    {
                        r.Reached = true;
                        onReached?.Invoke(r);
                    }
                }
                var pending = results.Where(r => !r.Reached).ToArray();
                var signature = string.Join(",", results.Select(r => r.LastSeen));
                var status = pending.Length == 0 ? "done" : string.Join("; ", pending.Select(r => $"{r.Selector}: {r.LastSeen}"));
                return (pending.Length == 0, signature, status);
            }, error =>
            {
                foreach (var r in results.Where(r => !r.Reached)) r.LastError = error;
            }, cancellationToken).ConfigureAwait(false);
            return results;
        }

        /// <summary>The error for a node that did not reach the wanted state in time, naming the state last seen.</summary>
        public static BbException TimeoutError(ZduNodeWaitResult result, IReadOnlyCollection<NodeState> states, TimeSpan timeout) =>
            new BbException(TimeoutErrorId, BbErrorCategory.OperationTimeout,
                $"Node {result.Selector} did not become {string.Join(" or ", states)} within {timeout.TotalSeconds:0.#} s. Last seen: {result.LastSeen}.",
                (object?)result.Node ?? result.Selector);

        /// <summary>
        /// The poll loop (<see cref="Poller"/>): read the cluster, let <paramref name="check"/> decide, report progress,
        /// sleep adaptively. Transient read failures (<see cref="Transient.ZduRead"/>: unreachable, timeouts, 5xx, odd pages
        /// while a node restarts) are remembered and polling goes on; anything else (401, 403, ...) ends the wait at once.
        /// </summary>
        private static async Task<bool> PollAsync(IZduClient client, TimeSpan timeout, IOperationHost host, ZduPollOptions? poll, string activity,
            Func<ZduCluster, (bool Done, string Signature, string Status)> check, Action<string> onTransientError, CancellationToken cancellationToken)
        {
            poll ??= new ZduPollOptions();
            var activityId = Math.Abs(activity.GetHashCode() % 100000) + 1;
            string? lastSignature = null;
            var changed = false;
            var status = "";
            try
            {
                var result = await poll.Poller.PollAsync(c => client.GetClusterAsync(c), cluster =>
                {
                    var (done, signature, text) = check(cluster);
                    if (done) return true;
                    changed = false;
                    if (signature != lastSignature)
                    {
                        changed = lastSignature is not null;
                        host.Verbose($"{activity}: {text}");
                        lastSignature = signature;
                    }
                    status = text;
                    return false;
                }, new PollOptions<ZduCluster>(timeout, new PollSchedule(poll.InitialInterval, poll.MaxInterval, poll.Factor))
                {
                    IsTransient = Transient.ZduRead,
                    ProbeWithinDeadline = true,
                    RestartBackoffWhen = _ => changed,
                    OnTransientError = error =>
                    {
                        var ex = (ZduApiException)error;
                        onTransientError(ex.Message);
                        host.Verbose($"{activity}: reading the cluster failed, still waiting: {ex.Message}");
                        status = "the cluster did not answer: " + ex.Kind;
                    },
                    OnWaiting = (elapsed, remaining) => host.Progress(new OperationProgress(activityId, activity, status)
                    {
                        PercentComplete = (int)Math.Min(99, elapsed.TotalMilliseconds * 100 / Math.Max(1, timeout.TotalMilliseconds)),
                        SecondsRemaining = (int)remaining.TotalSeconds,
                    }),
                }, cancellationToken).ConfigureAwait(false);
                return result.Reached;
            }
            finally
            {
                host.Progress(new OperationProgress(activityId, activity, "done") { Completed = true });
            }
        }
    }
}
