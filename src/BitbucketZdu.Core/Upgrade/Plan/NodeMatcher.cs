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
        public static ZduNode? Find(IEnumerable<ZduNode> apiNodes, NodeProfile node)
        {
            var candidates = apiNodes.Where(n => Matches(n, node)).ToList();
            return candidates.FirstOrDefault(n => n.State != NodeState.OFFLINE) ?? candidates.FirstOrDefault();
        }

        public static bool Matches(ZduNode apiNode, NodeProfile node)
        {
            if (!string.IsNullOrEmpty(node.ApiAddress))
                return string.Equals(apiNode.Address, node.ApiAddress, StringComparison.OrdinalIgnoreCase)
                    || string.Equals(apiNode.IpAddress, node.ApiAddress, StringComparison.OrdinalIgnoreCase);
            return string.Equals(apiNode.Name, node.Name, StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>API nodes (not OFFLINE) that no profile node matches.</summary>
        public static IReadOnlyList<ZduNode> Unmatched(IEnumerable<ZduNode> apiNodes, IEnumerable<NodeProfile> profileNodes)
        {
            var list = profileNodes.ToList();
            return apiNodes.Where(a => a.State != NodeState.OFFLINE && !list.Any(p => Matches(a, p))).ToList();
        }
    }
}
