using System;
using System.Collections.Generic;
using System.Linq;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>A Bitbucket node as far as the load balancer cares: its name and address.</summary>
    public sealed class NodeRef
    {
        public NodeRef(string? name, string? ipAddress = null, int? port = null)
        {
            Name = name;
            IpAddress = ipAddress;
            Port = port;
        }

        public string? Name { get; }
        public string? IpAddress { get; }
        public int? Port { get; }

        public override string ToString() => Name ?? (IpAddress is null ? "?" : Port is int p ? IpAddress + ":" + p : IpAddress);
    }

    /// <summary>Maps a node to a member name by the description's <see cref="MemberMatch"/> rule.</summary>
    public static class MemberResolver
    {
        /// <summary>The member name for <paramref name="node"/>; throws <c>LoadBalancerMemberNotFound</c> (listing the members) when none matches.</summary>
        public static string Resolve(LoadBalancerDescription lb, NodeRef node, IReadOnlyList<LoadBalancerMember> members)
        {
            var name = TryResolve(lb, node, members);
            if (name is not null) return name;
            throw new BbException("LoadBalancerMemberNotFound", BbErrorCategory.ObjectNotFound,
                $"No member of {lb.Kind} backend '{lb.Backend}' matches node '{node}' (by {lb.MatchBy}). Members: " +
                (members.Count == 0 ? "none" : string.Join(", ", members.Select(m => m.Address is null || m.Address == m.Name ? m.Name : $"{m.Name} ({m.Address})"))) +
                ". Pass -MemberMap @{ '<node>' = '<member>' } or -Member. Nothing was changed.", node.ToString());
        }

        public static string? TryResolve(LoadBalancerDescription lb, NodeRef node, IReadOnlyList<LoadBalancerMember> members)
        {
            string? mapped = null;
            foreach (var key in new[] { node.Name, node.IpAddress, node.Port is int p && node.IpAddress is not null ? node.IpAddress + ":" + p : null })
                if (key is not null && lb.MemberMap.TryGetValue(key, out var v)) { mapped = v; break; }
            if (lb.MatchBy == MemberMatch.Map || mapped is not null)
                return mapped;

            if ((lb.MatchBy == MemberMatch.Auto || lb.MatchBy == MemberMatch.Name) && node.Name is not null)
            {
                var byName = members.FirstOrDefault(m => string.Equals(m.Name, node.Name, StringComparison.OrdinalIgnoreCase));
                if (byName is not null) return byName.Name;
                if (lb.MatchBy == MemberMatch.Name) return null;
            }

            if (node.IpAddress is null) return null;
            var candidates = members.Where(m => AddressMatches(m, node)).ToList();
            if (candidates.Count > 1 && node.Port is int port)
                candidates = candidates.Where(m => PortOf(m.Address ?? m.Name) == port).ToList();
            if (candidates.Count > 1)
                throw new BbException("LoadBalancerMemberAmbiguous", BbErrorCategory.InvalidArgument,
                    $"Node '{node}' matches several members of {lb.Kind} backend '{lb.Backend}': {string.Join(", ", candidates.Select(c => c.Name))}. Pass -MemberMap to choose. Nothing was changed.", node.ToString());
            if (candidates.Count == 1) return candidates[0].Name;
            // Azure pools list bare addresses; a removed one is no longer listed but is still the node's member.
            return lb.Kind == LoadBalancerKind.AzureAppGateway ? node.IpAddress : null;
        }

        private static bool AddressMatches(LoadBalancerMember m, NodeRef node) =>
            string.Equals(HostOf(m.Address ?? m.Name), node.IpAddress, StringComparison.OrdinalIgnoreCase)
            || string.Equals(HostOf(m.Name), node.IpAddress, StringComparison.OrdinalIgnoreCase);

        /// <summary>The host of "host:port", "http://host:port/..." or "[v6]:port".</summary>
        internal static string HostOf(string address)
        {
            var a = address;
            var scheme = a.IndexOf("://", StringComparison.Ordinal);
            if (scheme >= 0) a = a.Substring(scheme + 3);
            var slash = a.IndexOf('/');
            if (slash >= 0) a = a.Substring(0, slash);
            if (a.StartsWith("[", StringComparison.Ordinal))
            {
                var close = a.IndexOf(']');
                return close > 0 ? a.Substring(1, close - 1) : a;
            }
            var colon = a.LastIndexOf(':');
            return colon > 0 && a.IndexOf(':') == colon ? a.Substring(0, colon) : a;
        }

        internal static int? PortOf(string address)
        {
            var a = address;
            var scheme = a.IndexOf("://", StringComparison.Ordinal);
            if (scheme >= 0) a = a.Substring(scheme + 3);
            var slash = a.IndexOf('/');
            if (slash >= 0) a = a.Substring(0, slash);
            var colon = a.LastIndexOf(':');
            return colon > 0 && int.TryParse(a.Substring(colon + 1), out var p) ? p : (int?)null;
        }
    }
}
