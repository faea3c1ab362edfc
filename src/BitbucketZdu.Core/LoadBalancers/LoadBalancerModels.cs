using System;
using System.Collections.Generic;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>The load balancers BitbucketZdu can drive.</summary>
    public enum LoadBalancerKind
    {
        HAProxy,
        Nginx,
        NginxPlus,
        Apache,
        AzureAppGateway,
        F5BigIp,
        AwsElb,
    }

    /// <summary>What the load balancer was told to do with a member (its administrative state).</summary>
    public enum MemberAdminState
    {
        Unknown,
        /// <summary>In rotation: receives new requests.</summary>
        Ready,
        /// <summary>No new requests (sticky sessions may still land); in-flight requests finish.</summary>
        Draining,
        /// <summary>Out of rotation: no requests at all (HAProxy maint, Apache disabled, NGINX down, removed from an Azure pool).</summary>
        Maintenance,
    }

    /// <summary>What the load balancer's health checks say about a member.</summary>
    public enum MemberHealth
    {
        /// <summary>The load balancer does not check health (NGINX open source, HAProxy without 'check').</summary>
        Unknown,
        Up,
        Down,
    }

    /// <summary>How a Bitbucket node is matched to a load-balancer member.</summary>
    public enum MemberMatch
    {
        /// <summary>The explicit map when it names the node, else the member named like the node, else the member whose address is the node's.</summary>
        Auto,
        Name,
        Address,
        Map,
    }

    /// <summary>One server of a backend/upstream/balancer/pool as the load balancer reports it.</summary>
    public sealed class LoadBalancerMember
    {
        public LoadBalancerMember(string name, string? address, string backend, MemberAdminState state, MemberHealth health)
        {
            Name = name;
            Address = address;
            Backend = backend;
            State = state;
            Health = health;
        }

        /// <summary>The member's name at the load balancer (HAProxy server name, NGINX server address, Apache worker URL, Azure pool address).</summary>
        public string Name { get; }

        /// <summary>host:port (or host) the member forwards to, when known.</summary>
        public string? Address { get; }

        public string Backend { get; }
        public MemberAdminState State { get; }
        public MemberHealth Health { get; }

        /// <summary>Requests or connections in flight to the member; null when the load balancer does not count them.</summary>
        public int? ActiveConnections { get; set; }

        /// <summary>The load balancer's own status text (e.g. HAProxy "DRAIN", Apache "Init Drn Ok").</summary>
        public string? Status { get; set; }

        /// <summary>The load balancer this member belongs to (display name, never a secret).</summary>
        public string LoadBalancer { get; set; } = "";

        /// <summary>Per-instance states when several instances (an HAProxy HA pair) are driven together.</summary>
        public IReadOnlyList<string> Instances { get; set; } = Array.Empty<string>();

        /// <summary>A provider's private handle (NGINX Plus server id, Apache nonce); not shown.</summary>
        internal string? Handle { get; set; }

        /// <summary>In rotation and not reported down.</summary>
        public bool InRotation => State == MemberAdminState.Ready && Health != MemberHealth.Down;

        public override string ToString() => $"{Backend}/{Name} {State}";
    }

    /// <summary>How far a member's drain has got.</summary>
    public sealed class DrainStatus
    {
        public DrainStatus(bool idle, int? active, string detail)
        {
            Idle = idle;
            Active = active;
            Detail = detail;
        }

        public bool Idle { get; }
        public int? Active { get; }
        public string Detail { get; }
    }
}
