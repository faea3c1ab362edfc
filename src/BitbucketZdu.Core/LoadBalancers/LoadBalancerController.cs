using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>Knobs for one remove/add.</summary>
    public sealed class LoadBalancerOptions
    {
        /// <summary>How long in-flight work may take to finish; null = the load balancer's own (Azure connectionDraining) or 5 minutes.</summary>
        public TimeSpan? DrainTimeout { get; set; }

        /// <summary>How long a re-added member may take to be reported healthy.</summary>
        public TimeSpan HealthTimeout { get; set; } = TimeSpan.FromMinutes(5);

        /// <summary>At most this many members out of rotation at once (including the one being removed).</summary>
        public int MaxMembersOut { get; set; } = 1;

        /// <summary>First poll interval; it backs off to <see cref="MaxPollInterval"/>.</summary>
        public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);
        public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(2);

        /// <summary>
        /// The caller's own health gate passed for this node (the upgrade's gate: /status RUNNING, ACTIVE on the target,
        /// seen by another node), so <see cref="LoadBalancerController.AddAsync"/> may tell the balancer it is healthy
        /// rather than wait for its checks to rise. Never set it for a node nobody checked.
        /// </summary>
        public bool HealthVerified { get; set; }

        /// <summary>The node the member stands for (for messages and results).</summary>
        public string? NodeName { get; set; }

        public int ProgressActivityId { get; set; } = ProgressActivities.LoadBalancerChange;
        public int ParentProgressActivityId { get; set; } = -1;
    }

    /// <summary>What a remove or add did (or, under -WhatIf, would do).</summary>
    public sealed class LoadBalancerChangeResult
    {
        public string Action { get; set; } = "";
        public string LoadBalancer { get; set; } = "";
        public LoadBalancerKind Kind { get; set; }
        public string Backend { get; set; } = "";
        public string Member { get; set; } = "";
        public string? Node { get; set; }
        public MemberAdminState PreviousState { get; set; }
        public MemberAdminState State { get; set; }
        public MemberHealth Health { get; set; }
        /// <summary>False when nothing needed doing (already out / already in) or under -WhatIf.</summary>
        public bool Changed { get; set; }
        public bool WhatIf { get; set; }
        /// <summary>The exact change, as shown by -WhatIf.</summary>
        public string Change { get; set; } = "";
        public int? ActiveAtDrainStart { get; set; }
        public TimeSpan DrainDuration { get; set; }
        public bool DrainTimedOut { get; set; }
        /// <summary>Connections/requests still in flight when the drain timeout passed (they are cut when the node stops); 0 when the drain completed.</summary>
        public int? ConnectionsCut { get; set; }
        public TimeSpan HealthWait { get; set; }
        /// <summary>The member was told it is healthy (its health gate had passed) instead of waiting for the balancer's checks.</summary>
        public bool MarkedHealthy { get; set; }
        public TimeSpan Duration { get; set; }
        public string? Note { get; set; }
    }

    /// <summary>
    /// Takes members out of and back into rotation safely: drain → wait idle (or the drain timeout, reporting what was
    /// cut) → maintenance, or where the balancer lets in-flight work finish in maintenance
    /// (<see cref="ILoadBalancer.DrainsInMaintenance"/>) maintenance → wait idle; enable → wait healthy. Never removes the last member in rotation nor more than
    /// <see cref="LoadBalancerOptions.MaxMembersOut"/>; on failure or cancellation the member gets its previous state back.
    /// </summary>
    public sealed class LoadBalancerController
    {
        private static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromMinutes(5);
        private static readonly TimeSpan RestoreTimeout = TimeSpan.FromSeconds(60);

        private readonly Poller _poller;

        /// <param name="poller">The clock its waits run on (real time by default; tests pass a virtual one).</param>
        public LoadBalancerController(ILoadBalancer loadBalancer, Poller? poller = null)
        {
            LoadBalancer = loadBalancer;
            _poller = poller ?? Poller.System;
        }

        /// <summary>
        /// One removal at a time from reading the members to the member draining: removals running at the same time
        /// (a batch of -MaxUnavailable nodes) each see the others' members out, so the MaxMembersOut guard cannot be passed twice on one reading.
        /// </summary>
        private readonly SemaphoreSlim _removeGate = new SemaphoreSlim(1, 1);

        public ILoadBalancer LoadBalancer { get; }

        /// <summary>Maps a node to its member name (see <see cref="MemberResolver"/>).</summary>
        public async Task<string> ResolveMemberAsync(NodeRef node, CancellationToken cancellationToken)
        {
            var members = await LoadBalancer.GetMembersAsync(cancellationToken).ConfigureAwait(false);
            return MemberResolver.Resolve(LoadBalancer.Description, node, members);
        }

        public async Task<LoadBalancerChangeResult> RemoveAsync(string memberName, LoadBalancerOptions options, IOperationHost host, CancellationToken cancellationToken)
        {
            await _removeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            var gated = true;
            void Ungate()
            {
                if (!gated) return;
                gated = false;
                _removeGate.Release();
            }
            try
            {
                return await RemoveGatedAsync(memberName, options, host, Ungate, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Ungate();
            }
        }

        private async Task<LoadBalancerChangeResult> RemoveGatedAsync(string memberName, LoadBalancerOptions options, IOperationHost host, Action ungate, CancellationToken cancellationToken)
        {
            var total = _poller.Time.GetTimestamp();
            var lb = LoadBalancer.Description;
            var members = await LoadBalancer.GetMembersAsync(cancellationToken).ConfigureAwait(false);
            var member = members.FirstOrDefault(m => string.Equals(m.Name, memberName, StringComparison.OrdinalIgnoreCase))
                ?? await LoadBalancer.FindMemberAsync(memberName, cancellationToken).ConfigureAwait(false)
                ?? throw LoadBalancerErrors.MemberNotFound(lb, memberName, members);
            var result = NewResult("Remove", member, options);

            var drainTimeout = options.DrainTimeout ?? LoadBalancer.DefaultDrainTimeout ?? DefaultDrainTimeout;
            // Straight to maintenance where that still lets the work in flight finish (and counts it): no new request
            // reaches the member, sticky ones included, and the wait is only as long as the requests already running.
            var direct = LoadBalancer.DrainsInMaintenance;
            if (member.State == MemberAdminState.Maintenance)
            {
                result.Note = "Already out of rotation; nothing to do.";
                host.Verbose($"{lb.DisplayName}: member '{member.Name}' is already out of rotation.");
                // A run that stopped between 'maint' and the end of the wait resumes here: the work still in flight is
                // waited for all the same (one read when there is none).
                if (direct)
                {
                    try { await WaitIdleAsync(member, drainTimeout, options, host, result, cancellationToken).ConfigureAwait(false); }
                    finally { CompleteDrainProgress(member, options, host); }
                }
                return Finish(result, member, total);
            }

            var others = members.Where(m => !string.Equals(m.Name, member.Name, StringComparison.OrdinalIgnoreCase)).ToList();
            var alreadyOut = others.Where(m => m.State != MemberAdminState.Ready).ToList();
            if (alreadyOut.Count + 1 > options.MaxMembersOut)
                throw new BbException("LoadBalancerTooManyMembersOut", BbErrorCategory.LimitsExceeded,
                    $"Refusing to take '{member.Name}' out of {lb.DisplayName}: {alreadyOut.Count} member(s) are already out of rotation " +
                    $"({string.Join(", ", alreadyOut.Select(m => m.Name + " " + m.State))}) and at most {options.MaxMembersOut} may be out at once. " +
                    "Add them back first, or raise the limit (-MaxMembersOut). Nothing was changed.", member.Name);

            if (!others.Any(m => m.InRotation))
                throw new BbException("LoadBalancerLastHealthyMember", BbErrorCategory.InvalidOperation,
                    $"Refusing to take '{member.Name}' out of {lb.DisplayName}: no other member is in rotation and healthy " +
                    $"({(others.Count == 0 ? "no other members" : string.Join(", ", others.Select(m => $"{m.Name} {m.State}/{m.Health}")))}). Bring another member back first. Nothing was changed.", member.Name);
            result.Change = direct
                ? LoadBalancer.DescribeChange(member, MemberAdminState.Maintenance) +
                  $" (no new requests, sticky ones included); wait up to {drainTimeout.TotalSeconds:0.#} s for the requests and connections in flight to finish"
                : LoadBalancer.DescribeChange(member, MemberAdminState.Draining) +
                  $"; wait up to {drainTimeout.TotalSeconds:0.#} s for in-flight work to finish; then " +
                  LoadBalancer.DescribeChange(member, MemberAdminState.Maintenance);
            if (!host.ShouldProcess($"{member.Name} in {lb.DisplayName}", result.Change))
            {
                result.WhatIf = true;
                return Finish(result, member, total);
            }

            var previous = member.State;
            try
            {
                host.Verbose(direct
                    ? $"{lb.DisplayName}: taking '{member.Name}' out of rotation; waiting for the work in flight to finish."
                    : $"{lb.DisplayName}: draining '{member.Name}'.");
                var drained = await LoadBalancer.SetStateAsync(member, direct ? MemberAdminState.Maintenance : MemberAdminState.Draining, cancellationToken).ConfigureAwait(false);
                if (drained.State != MemberAdminState.Draining && drained.State != MemberAdminState.Maintenance)
                    throw LoadBalancerErrors.VerifyFailed(lb, member.Name, MemberAdminState.Draining, drained);
                result.Changed = true;
                // The member is out now: another removal's guard counts it from here on.
                ungate();

                await WaitIdleAsync(drained, drainTimeout, options, host, result, cancellationToken).ConfigureAwait(false);

                var final = drained.State == MemberAdminState.Maintenance
                    ? drained
                    : await LoadBalancer.SetStateAsync(drained, MemberAdminState.Maintenance, cancellationToken).ConfigureAwait(false);
                if (final.State != MemberAdminState.Maintenance)
                    throw LoadBalancerErrors.VerifyFailed(lb, member.Name, MemberAdminState.Maintenance, final);
                host.Verbose($"{lb.DisplayName}: '{member.Name}' is out of rotation after {result.DrainDuration.TotalSeconds:0.0} s of draining" +
                             (result.DrainTimedOut ? $"; {result.ConnectionsCut?.ToString() ?? "an unknown number of"} connection(s) were still active at the timeout." : "."));
                return Finish(result, final, total);
            }
            catch (Exception ex)
            {
                await RestoreAsync(member.Name, previous, host, ex).ConfigureAwait(false);
                throw;
            }
            finally
            {
                CompleteDrainProgress(member, options, host);
            }
        }

        public async Task<LoadBalancerChangeResult> AddAsync(string memberName, LoadBalancerOptions options, IOperationHost host, CancellationToken cancellationToken)
        {
            var total = _poller.Time.GetTimestamp();
            var lb = LoadBalancer.Description;
            var member = await LoadBalancer.FindMemberAsync(memberName, cancellationToken).ConfigureAwait(false);
            if (member is null)
            {
                var members = await LoadBalancer.GetMembersAsync(cancellationToken).ConfigureAwait(false);
                throw LoadBalancerErrors.MemberNotFound(lb, memberName, members);
            }
            var result = NewResult("Add", member, options);
            if (member.State == MemberAdminState.Ready && member.Health != MemberHealth.Down)
            {
                result.Note = "Already in rotation; nothing to do.";
                host.Verbose($"{lb.DisplayName}: member '{member.Name}' is already in rotation.");
                return Finish(result, member, total);
            }

            result.Change = member.State == MemberAdminState.Ready
                ? $"wait up to {options.HealthTimeout.TotalSeconds:0.#} s until the load balancer reports '{member.Name}' healthy"
                : LoadBalancer.DescribeChange(member, MemberAdminState.Ready) + $"; wait up to {options.HealthTimeout.TotalSeconds:0.#} s until it is reported healthy";
            if (!host.ShouldProcess($"{member.Name} in {lb.DisplayName}", result.Change))
            {
                result.WhatIf = true;
                return Finish(result, member, total);
            }

            var previous = member.State;
            try
            {
                var current = member;
                if (member.State != MemberAdminState.Ready)
                {
                    host.Verbose($"{lb.DisplayName}: enabling '{member.Name}'.");
                    current = await LoadBalancer.SetStateAsync(member, MemberAdminState.Ready, cancellationToken).ConfigureAwait(false);
                    result.Changed = true;
                    if (current.State != MemberAdminState.Ready)
                        throw LoadBalancerErrors.VerifyFailed(lb, member.Name, MemberAdminState.Ready, current);
                }
                var healthWait = _poller.Time.GetTimestamp();
                if (current.Health == MemberHealth.Down && options.HealthVerified)
                {
                    // Waiting for 'rise' checks only re-learns what the gate already proved; the balancer's next check
                    // still takes it down again should the node fail after all.
                    if (await LoadBalancer.MarkHealthyAsync(current, cancellationToken).ConfigureAwait(false))
                    {
                        result.MarkedHealthy = true;
                        current = await LoadBalancer.FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false) ?? current;
                    }
                }
                var healthy = await _poller.PollAsync(async c => await LoadBalancer.FindMemberAsync(member.Name, c).ConfigureAwait(false) ?? current,
                    m => (current = m).Health != MemberHealth.Down,
                    new PollOptions<LoadBalancerMember>(options.HealthTimeout - _poller.Time.GetElapsedTime(healthWait), Schedule(options))
                    {
                        OnWaiting = (elapsed, remaining) => host.Progress(new OperationProgress(options.ProgressActivityId, "Waiting for " + member.Name + " to be healthy", current.Status ?? current.Health.ToString())
                        { ParentActivityId = options.ParentProgressActivityId, SecondsRemaining = (int)Math.Max(0, remaining.TotalSeconds) }),
                    }.StartingWith(current), cancellationToken).ConfigureAwait(false);
                if (!healthy.Reached)
                    throw new BbException("LoadBalancerMemberUnhealthy", BbErrorCategory.OperationTimeout,
                        $"{lb.DisplayName}: '{member.Name}' was enabled but not reported healthy within {options.HealthTimeout.TotalSeconds:0.#} s (last status: {current.Status ?? current.Health.ToString()}). " +
                        "It was put back to its previous state. Check the node and the health check.", member.Name);
                result.HealthWait = _poller.Time.GetElapsedTime(healthWait);
                if (current.Health == MemberHealth.Unknown)
                    result.Note = $"{lb.Kind} does not report health for this member; it is in rotation.";
                host.Verbose($"{lb.DisplayName}: '{member.Name}' is back in rotation ({current.Health}).");
                return Finish(result, current, total);
            }
            catch (Exception ex)
            {
                await RestoreAsync(member.Name, previous, host, ex).ConfigureAwait(false);
                throw;
            }
            finally
            {
                host.Progress(new OperationProgress(options.ProgressActivityId, "Waiting for " + member.Name, "done") { Completed = true, ParentActivityId = options.ParentProgressActivityId });
            }
        }

        private async Task WaitIdleAsync(LoadBalancerMember member, TimeSpan timeout, LoadBalancerOptions options, IOperationHost host,
            LoadBalancerChangeResult result, CancellationToken cancellationToken)
        {
            DrainStatus? status = null;
            var idle = await _poller.PollAsync(c => LoadBalancer.GetDrainStatusAsync(member, c), s =>
                {
                    if (status is null) result.ActiveAtDrainStart = s.Active;
                    status = s;
                    return s.Idle;
                }, new PollOptions<DrainStatus>(timeout, Schedule(options))
                {
                    OnWaiting = (elapsed, remaining) => host.Progress(new OperationProgress(options.ProgressActivityId, "Draining " + member.Name, status!.Detail)
                    {
                        ParentActivityId = options.ParentProgressActivityId,
                        PercentComplete = (int)(100 * elapsed.TotalMilliseconds / Math.Max(1, timeout.TotalMilliseconds)),
                        SecondsRemaining = (int)Math.Max(0, remaining.TotalSeconds),
                    }),
                }, cancellationToken).ConfigureAwait(false);
            if (!idle.Reached)
            {
                result.DrainTimedOut = true;
                result.ConnectionsCut = status!.Active;
                host.Warning($"{LoadBalancer.Description.DisplayName}: '{member.Name}' still had work in flight after the drain timeout of {timeout.TotalSeconds:0.#} s ({status.Detail}); taking it out anyway.");
            }
            else result.ConnectionsCut = 0;
            result.DrainDuration = idle.Elapsed;
        }

        private async Task RestoreAsync(string memberName, MemberAdminState previous, IOperationHost host, Exception? cause)
        {
            var lb = LoadBalancer.Description;
            using var cts = new CancellationTokenSource(RestoreTimeout);
            try
            {
                var now = await LoadBalancer.FindMemberAsync(memberName, cts.Token).ConfigureAwait(false);
                if (now is null || now.State == previous) return;
                await LoadBalancer.SetStateAsync(now, previous, cts.Token).ConfigureAwait(false);
                host.Warning($"{lb.DisplayName}: '{memberName}' was put back to {previous} because the operation " +
                             (cause is OperationCanceledException ? "was cancelled." : "failed."));
            }
            catch (Exception ex)
            {
                host.Warning($"{lb.DisplayName}: could not put '{memberName}' back to {previous}: {ex.Message} Set it by hand.");
            }
        }

        private static void CompleteDrainProgress(LoadBalancerMember member, LoadBalancerOptions options, IOperationHost host) =>
            host.Progress(new OperationProgress(options.ProgressActivityId, "Draining " + member.Name, "done") { Completed = true, ParentActivityId = options.ParentProgressActivityId });

        /// <summary>From the caller's first interval, backing off by 1.5x up to its cap, or the provider's cheap interval when that is shorter.</summary>
        private PollSchedule Schedule(LoadBalancerOptions options) => new PollSchedule(options.PollInterval, MaxPoll(options), 1.5);

        private TimeSpan MaxPoll(LoadBalancerOptions options) =>
            LoadBalancer.CheapPollInterval is TimeSpan cheap ? Min(cheap, options.MaxPollInterval) : options.MaxPollInterval;

        private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

        private LoadBalancerChangeResult NewResult(string action, LoadBalancerMember member, LoadBalancerOptions options) => new LoadBalancerChangeResult
        {
            Action = action,
            LoadBalancer = LoadBalancer.Description.DisplayName,
            Kind = LoadBalancer.Description.Kind,
            Backend = LoadBalancer.Description.Backend,
            Member = member.Name,
            Node = options.NodeName,
            PreviousState = member.State,
        };

        private LoadBalancerChangeResult Finish(LoadBalancerChangeResult result, LoadBalancerMember member, long started)
        {
            result.State = member.State;
            result.Health = member.Health;
            result.Duration = _poller.Time.GetElapsedTime(started);
            return result;
        }
    }
}
