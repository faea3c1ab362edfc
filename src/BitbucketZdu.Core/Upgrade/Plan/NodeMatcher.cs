using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Plan
{
    /// <summary>
    /// Finds a profile node among the API's nodes: by ApiAddress (ip:port or ip) when the profile gives one, else by
    /// name. Ids are never used (they may change across restarts). A live row wins over a stale OFFLINE one.
    /// </summary>
    public static class NodeMatcher
    {
        /// <summary>The name the plugin reports for a node whose name is not configured (its builder's default).</summary>
        public const string NotConfigured = "Not configured";

        public static ZduNode? Find(IEnumerable<ZduNode> apiNodes, NodeProfile node)
        {
            var all = apiNodes.ToList();
            var candidates = all.Where(n => Matches(n, node)).ToList();
            // Names "Not configured" (the plugin's default) match no profile name: fall back to the host of the node's Url.
            if (candidates.Count == 0 && string.IsNullOrEmpty(node.ApiAddress))
                candidates = all.Where(n => string.Equals(n.Name, NotConfigured, StringComparison.OrdinalIgnoreCase)
                    && string.Equals(n.IpAddress, node.Url.Host, StringComparison.OrdinalIgnoreCase)).ToList();
            var live = candidates.FirstOrDefault(n => n.State != NodeState.OFFLINE);
            if (live is not null) return live;
            // Only a stale OFFLINE row at the profile's address: a node back on a new address keeps its id (zdu-api.md §12).
            foreach (var stale in candidates)
            {
                var twin = all.FirstOrDefault(n => !ReferenceEquals(n, stale) && n.State != NodeState.OFFLINE && n.Id is not null && n.Id == stale.Id);
                if (twin is not null) return twin;
            }
            return candidates.FirstOrDefault();
        }

        public static bool Matches(ZduNode apiNode, NodeProfile node)
        {
            if (!string.IsNullOrEmpty(node.ApiAddress))
                return SameAddress(apiNode, node.ApiAddress!) || apiNode.StaleAddresses.Any(a => SameHost(a, node.ApiAddress!));
            return string.Equals(apiNode.Name, node.Name, StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>ip:port or ip; the plugin's JSON has no portNumber (@JsonIgnore), so "ip:port" also matches the ip alone.</summary>
        private static bool SameAddress(ZduNode apiNode, string apiAddress) =>
            string.Equals(apiNode.Address, apiAddress, StringComparison.OrdinalIgnoreCase)
            || string.Equals(apiNode.IpAddress, apiAddress, StringComparison.OrdinalIgnoreCase)
            || (apiNode.PortNumber is null && apiNode.IpAddress is not null && SameHost(apiNode.IpAddress, apiAddress));

        private static bool SameHost(string ip, string apiAddress)
        {
            var colon = apiAddress.LastIndexOf(':');
            var host = colon > 0 && apiAddress.IndexOf(':') == colon ? apiAddress.Substring(0, colon) : apiAddress;
            return string.Equals(ip, host, StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>API nodes (not OFFLINE) that no profile node matches.</summary>
        public static IReadOnlyList<ZduNode> Unmatched(IEnumerable<ZduNode> apiNodes, IEnumerable<NodeProfile> profileNodes)
        {
            var list = profileNodes.ToList();
            var all = apiNodes.ToList();
            return all.Where(a => a.State != NodeState.OFFLINE && !list.Any(p => ReferenceEquals(Find(all, p), a))).ToList();
        }
    }
}
