using System;
using System.Collections.Generic;
using System.Linq;

namespace BitbucketZdu.Core.Api
{
    /// <summary>A hypermedia link of the rolling-upgrade API.</summary>
    public sealed class ZduLink
    {
        public ZduLink(string rel, string? href)
        {
            Rel = rel;
            Href = href;
        }

        public string Rel { get; }
        public string? Href { get; }

        public override string ToString() => Rel;
    }

    /// <summary>One node as the rolling-upgrade API reports it (NodeInfoDTO). Counts are null when the server omits them.</summary>
    /// <summary>Links of a node or cluster; as text (a CSV cell) their relations, not the collection's type name.</summary>
    public sealed class ZduLinkList : List<ZduLink>
    {
        public override string ToString() => string.Join(" ", this.Select(l => l.Rel));
    }

    public sealed class ZduNode
    {
        public string? Id { get; set; }
        public string? Name { get; set; }
        public string? IpAddress { get; set; }
        public int? PortNumber { get; set; }
        /// <summary>Addresses of stale OFFLINE rows with this node's id that the client dropped (a node back on a new address).</summary>
        public IReadOnlyList<string> StaleAddresses { get; set; } = Array.Empty<string>();
        public NodeState State { get; set; }
        /// <summary>The state exactly as the server sent it (kept when <see cref="State"/> is Unknown).</summary>
        public string? StateText { get; set; }
        public int? TasksTotal { get; set; }
        public int? ActiveUserCount { get; set; }
        public string? BuildNumber { get; set; }
        public string? Version { get; set; }
        public bool Local { get; set; }
        public IReadOnlyList<ZduLink> Links { get; set; } = Array.Empty<ZduLink>();

        /// <summary>Address as the API identifies a node across restarts (ids may change): ip:port, or ip alone.</summary>
        public string? Address => IpAddress is null ? null : PortNumber is int p ? IpAddress + ":" + p : IpAddress;

        public override string ToString() => $"{Name ?? Id} ({StateText ?? State.ToString()}, {Version ?? "?"})";
    }

    /// <summary>The cluster overview (GET /rest/zdu/cluster and every POST).</summary>
    public sealed class ZduCluster
    {
        public bool UpgradeModeEnabled { get; set; }
        public bool? HasFinalizationTasks { get; set; }
        public ClusterState State { get; set; }
        public string? StateText { get; set; }
        public string? OriginalVersion { get; set; }
        public IReadOnlyList<ZduNode> Nodes { get; set; } = Array.Empty<ZduNode>();
        public IReadOnlyList<ZduLink> Links { get; set; } = Array.Empty<ZduLink>();

        /// <summary>What the client tolerated in this answer and the user should know (e.g. a stale duplicate node row).</summary>
        public IReadOnlyList<string> Warnings { get; set; } = Array.Empty<string>();

        /// <summary>True when the server offers the action now (its link is present).</summary>
        public bool Allows(string relation) =>
            Links.Any(l => string.Equals(l.Rel, relation, StringComparison.OrdinalIgnoreCase));

        /// <summary>The relations offered now, except self.</summary>
        public IReadOnlyList<string> AllowedActions =>
            Links.Select(l => l.Rel).Where(r => !string.Equals(r, ZduLinkRelations.Self, StringComparison.OrdinalIgnoreCase)).ToArray();
    }

    /// <summary>GET /rest/zdu/state: the cluster state and the answering node.</summary>
    public sealed class ZduStateResponse
    {
        public ClusterState State { get; set; }
        public string? StateText { get; set; }
        public ZduNode? BuildInfo { get; set; }
    }
}
