using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>
    /// One load balancer's control interface. Providers change one member's administrative state, read it back
    /// and verify it (a mismatch throws <c>LoadBalancerVerifyFailed</c>), and report in-flight work for draining.
    /// The safety rules and the drain/wait sequence live in <see cref="LoadBalancerController"/>.
    /// </summary>
    public interface ILoadBalancer : IDisposable
    {
        LoadBalancerDescription Description { get; }

        /// <summary>The members of the described backend; throws <c>LoadBalancerBackendNotFound</c> when it does not exist.</summary>
        Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken);

        /// <summary>
        /// Finds one member by its load-balancer name; null when there is none. Providers whose members can leave
        /// the list (an Azure pool address that was removed) return it with state Maintenance.
        /// </summary>
        Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken);

        /// <summary>Sets the member's state, reads it back and returns what the load balancer now reports.</summary>
        Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken);

        /// <summary>Whether the member still has work in flight (after it was set to drain).</summary>
        Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken);

        /// <summary>Exactly what <see cref="SetStateAsync"/> would change, for -WhatIf.</summary>
        string DescribeChange(LoadBalancerMember member, MemberAdminState state);

        /// <summary>The drain timeout the load balancer itself applies (Azure connectionDraining), if any.</summary>
        TimeSpan? DefaultDrainTimeout { get; }

        /// <summary>
        /// True when <see cref="MemberAdminState.Maintenance"/> stops every new request at once, persistent (sticky)
        /// ones included, lets the requests and connections in flight finish, and <see cref="GetDrainStatusAsync"/>
        /// keeps counting them (HAProxy MAINT: existing streams are not killed and <c>scur</c> still counts them). The
        /// controller then takes the member straight to Maintenance and waits only for the work in flight. Otherwise it
        /// drains first: a drain state that still admits sticky users (HAProxy DRAIN, Apache N, NGINX Plus drain) only
        /// ends when no user happens to be mid-request, which under load can take as long as users keep clicking.
        /// </summary>
        bool DrainsInMaintenance { get; }

        /// <summary>
        /// A read is cheap enough to repeat at this interval for a whole wait (HAProxy: one command on its runtime
        /// socket), so the controller's waits do not back off beyond it and notice the change within one interval.
        /// Null: the waits back off to the caller's <see cref="LoadBalancerOptions.MaxPollInterval"/> (cloud APIs,
        /// config files).
        /// </summary>
        TimeSpan? CheapPollInterval { get; }

        /// <summary>
        /// Tells the load balancer the member is healthy now instead of waiting for its own checks to rise (HAProxy
        /// <c>set server … health up</c>). Only for a node whose health the caller has verified itself. False when the
        /// provider cannot (then the caller waits for the balancer's checks as before).
        /// </summary>
        Task<bool> MarkHealthyAsync(LoadBalancerMember member, CancellationToken cancellationToken);
    }

    /// <summary>Shared plumbing for providers.</summary>
    public abstract class LoadBalancerBase : ILoadBalancer
    {
        protected LoadBalancerBase(LoadBalancerDescription description) => Description = description;

        public LoadBalancerDescription Description { get; }
        public virtual TimeSpan? DefaultDrainTimeout => null;
        public virtual bool DrainsInMaintenance => false;
        public virtual TimeSpan? CheapPollInterval => null;
        public virtual Task<bool> MarkHealthyAsync(LoadBalancerMember member, CancellationToken cancellationToken) => Task.FromResult(false);

        public abstract Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken);
        public abstract Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken);
        /// <summary>By default: idle when the load balancer counts no active connections/requests for the member.</summary>
        public virtual async Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var now = await FindMemberAsync(member.Name, cancellationToken).ConfigureAwait(false)
                ?? throw LoadBalancerErrors.MemberNotFound(Description, member.Name, Array.Empty<LoadBalancerMember>());
            var active = now.ActiveConnections ?? 0;
            return new DrainStatus(active == 0, active, $"{active} {ActiveUnit} on {member.Name}");
        }

        /// <summary>What <see cref="LoadBalancerMember.ActiveConnections"/> counts, for progress messages.</summary>
        protected virtual string ActiveUnit => "active connection(s)";
        public abstract string DescribeChange(LoadBalancerMember member, MemberAdminState state);

        public virtual async Task<LoadBalancerMember?> FindMemberAsync(string name, CancellationToken cancellationToken)
        {
            var members = await GetMembersAsync(cancellationToken).ConfigureAwait(false);
            return members.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
        }

        /// <summary>Reads the member back and fails when its state is not <paramref name="expected"/>.</summary>
        protected async Task<LoadBalancerMember> ReadBackAsync(string name, MemberAdminState expected, CancellationToken cancellationToken)
        {
            var after = await FindMemberAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw LoadBalancerErrors.MemberNotFound(Description, name, Array.Empty<LoadBalancerMember>());
            if (after.State != expected)
                throw LoadBalancerErrors.VerifyFailed(Description, name, expected, after);
            return after;
        }

        public virtual void Dispose() { }
    }
}
