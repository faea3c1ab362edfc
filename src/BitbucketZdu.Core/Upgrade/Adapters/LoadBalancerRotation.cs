using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Adapters
{
    /// <summary>
    /// The engine's <see cref="IRotation"/> over the load-balancer providers: a node's members in every load balancer
    /// the profile names are drained and taken out together, and put back together. The controller's safety rules
    /// (never the last healthy member, at most MaxUnavailable members out) and restore-on-failure apply to every change.
    /// </summary>
    public sealed class LoadBalancerRotation : IRotation, IDisposable
    {
        private readonly IReadOnlyDictionary<string, LoadBalancerProfile> _profiles;
        private readonly Func<LoadBalancerProfile, LoadBalancerController> _createController;
        private readonly ConcurrentDictionary<string, LoadBalancerController> _controllers =
            new ConcurrentDictionary<string, LoadBalancerController>(StringComparer.OrdinalIgnoreCase);
        private readonly IOperationHost _host;
        private readonly UpgradeTimeouts _timeouts;

        public LoadBalancerRotation(ClusterProfile profile, IOperationHost? host = null,
            Func<LoadBalancerProfile, LoadBalancerController>? createController = null,
            IReadOnlyDictionary<string, LoadBalancerCredential>? credentials = null, UpgradeClock? clock = null)
        {
            var poller = (clock ?? UpgradeClock.System).Poller;   // drain and health waits on the engine's clock
            _profiles = profile.LoadBalancers.ToDictionary(l => l.Name, StringComparer.OrdinalIgnoreCase);
            _createController = createController ?? (p => LoadBalancerFactory.CreateController(LoadBalancerProfileMapper.ToDescription(p,
                credentials is not null && credentials.TryGetValue(p.Name, out var c) ? c : null), poller));
            _host = host ?? NullOperationHost.Instance;
            _timeouts = profile.Timeouts;
            _maxMembersOut = Math.Max(1, profile.MaxUnavailable);
        }

        private readonly int _maxMembersOut;

        /// <summary>Results of every change made through this rotation (drain times, connections cut), newest last.</summary>
        public ConcurrentQueue<LoadBalancerChangeResult> Changes { get; } = new ConcurrentQueue<LoadBalancerChangeResult>();

        public async Task<RotationProbe> ProbeAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            var probe = new RotationProbe { Reachable = true, MemberFound = true, OtherHealthyMembers = int.MaxValue };
            var states = new List<RotationState>();
            foreach (var m in node.Members)
            {
                IReadOnlyList<LoadBalancerMember> members;
                try
                {
                    members = await Controller(m).LoadBalancer.GetMembersAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is BbException || ex is System.IO.IOException || ex is System.Net.Sockets.SocketException || ex is TimeoutException || ex is ArgumentException)
                {
                    return new RotationProbe { Reachable = false, Problem = $"{m.LoadBalancer} ({m.Place}): {ex.Message}" };
                }
                var member = members.FirstOrDefault(x => string.Equals(x.Name, m.Member, StringComparison.OrdinalIgnoreCase));
                if (member is null)
                {
                    probe.MemberFound = false;
                    probe.Problem = $"{m.LoadBalancer} has no member '{m.Member}' ({m.Place}); it has {string.Join(", ", members.Select(x => x.Name))}.";
                    continue;
                }
                states.Add(ToRotationState(member.State));
                probe.OtherHealthyMembers = Math.Min(probe.OtherHealthyMembers, members.Count(x => x != member && x.InRotation));
            }
            if (probe.OtherHealthyMembers == int.MaxValue) probe.OtherHealthyMembers = 0;
            probe.State = Combine(states);
            return probe;
        }

        /// <summary>
        /// The node's members in different load balancers (HTTP and SSH, say) are taken out at the same time, so each
        /// stops getting new work at once and the drain lasts as long as the longest work in flight, not the sum of
        /// each balancer's wait (an SSH clone starting while the HTTP member drained used to be waited for too).
        /// Members in the same load balancer go one after the other. Every take-out runs to its end; then the first
        /// failure is thrown (the members already out are put back by the node's restore).
        /// </summary>
        public async Task TakeOutAsync(NodeProfile node, TimeSpan drainTimeout, CancellationToken cancellationToken)
        {
            async Task TakeOutAll(IEnumerable<NodeMember> members)
            {
                foreach (var m in members)
                {
                    var options = Options(node, m);
                    options.DrainTimeout = drainTimeout;
                    Changes.Enqueue(await Controller(m).RemoveAsync(m.Member, options, _host, cancellationToken).ConfigureAwait(false));
                }
            }
            var byBalancer = node.Members.GroupBy(m => m.LoadBalancer, StringComparer.OrdinalIgnoreCase).ToList();
            if (byBalancer.Count <= 1)
            {
                await TakeOutAll(node.Members).ConfigureAwait(false);
                return;
            }
            var all = byBalancer.Select(g => TakeOutAll(g)).ToList();
            try
            {
                await Task.WhenAll(all).ConfigureAwait(false);
            }
            catch
            {
                // The first failure in member order, not whichever the scheduler surfaced.
                var first = all.First(t => t.IsFaulted || t.IsCanceled);
                if (first.Exception?.InnerException is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
                throw;
            }
        }

        public async Task PutBackAsync(NodeProfile node, TimeSpan healthyTimeout, CancellationToken cancellationToken, bool healthGatePassed = false)
        {
            foreach (var m in node.Members)
            {
                var options = Options(node, m);
                options.HealthTimeout = healthyTimeout;
                options.HealthVerified = healthGatePassed;
                Changes.Enqueue(await Controller(m).AddAsync(m.Member, options, _host, cancellationToken).ConfigureAwait(false));
            }
        }

        public async Task<RotationState> GetStateAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            var states = new List<RotationState>();
            foreach (var m in node.Members)
            {
                var member = await Controller(m).LoadBalancer.FindMemberAsync(m.Member, cancellationToken).ConfigureAwait(false);
                states.Add(member is null ? RotationState.Unknown : ToRotationState(member.State));
            }
            return Combine(states);
        }

        private LoadBalancerOptions Options(NodeProfile node, NodeMember m) => new LoadBalancerOptions
        {
            NodeName = node.Name,
            // -MaxUnavailable n: the balancer's own guard allows the n nodes of a batch out, never one more.
            MaxMembersOut = _maxMembersOut,
            PollInterval = _timeouts.FirstPollInterval,
            MaxPollInterval = _timeouts.MaxPollInterval,
        };

        private LoadBalancerController Controller(NodeMember m)
        {
            if (!_profiles.TryGetValue(m.LoadBalancer, out var profile))
                throw new BbException("ProfileUnknownLoadBalancer", BbErrorCategory.InvalidData,
                    $"{m.Place} names the load balancer '{m.LoadBalancer}', which the profile's LoadBalancers do not define.");
            return _controllers.GetOrAdd(profile.Name, _ => _createController(profile));
        }

        private static RotationState ToRotationState(MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => RotationState.InRotation,
            MemberAdminState.Draining => RotationState.Draining,
            MemberAdminState.Maintenance => RotationState.OutOfRotation,
            _ => RotationState.Unknown,
        };

        /// <summary>All members in → in; all out → out; any unknown → unknown; otherwise draining (partly out).</summary>
        private static RotationState Combine(IReadOnlyCollection<RotationState> states)
        {
            if (states.Count == 0 || states.Any(s => s == RotationState.Unknown)) return RotationState.Unknown;
            if (states.All(s => s == RotationState.InRotation)) return RotationState.InRotation;
            if (states.All(s => s == RotationState.OutOfRotation)) return RotationState.OutOfRotation;
            return RotationState.Draining;
        }

        public void Dispose()
        {
            foreach (var c in _controllers.Values) c.LoadBalancer.Dispose();
        }
    }
}
