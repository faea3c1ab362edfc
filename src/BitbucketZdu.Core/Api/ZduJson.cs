using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// Tolerant parsing of rolling-upgrade payloads: unknown fields are ignored, unknown enum values become Unknown
    /// with the raw text kept, missing counts stay null. Reads the DOM rather than binding classes so that a server
    /// of another version never breaks us.
    /// </summary>
    public static class ZduJson
    {
        public static ZduCluster ParseCluster(string json)
        {
            using var doc = JsonDocument.Parse(json);
            return ReadCluster(RequireObject(doc.RootElement, "cluster"));
        }

        /// <summary>
        /// The cluster as an answer of /rest/zdu/cluster must be: tolerant of unknown fields, but the fields we act on
        /// must have their documented types, and node ids must be unique (two nodes with one id would make every
        /// per-node step ambiguous). A <see cref="FormatException"/> says what is wrong.
        /// <para>One exception: the plugin merges its start-time snapshot with the live nodes by ip:port, so a node back
        /// on a new address leaves a stale OFFLINE row that may share the live row's id (zdu-api.md §12). Such duplicates
        /// are tolerated: the non-OFFLINE row wins and <see cref="ZduCluster.Warnings"/> says which rows were dropped.
        /// Two live rows with one id are still refused.</para>
        /// </summary>
        public static ZduCluster ParseClusterStrict(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var root = RequireObject(doc.RootElement, "cluster");
            RequireKind(root, "state", "cluster", JsonValueKind.String);
            RequireKind(root, "upgradeModeEnabled", "cluster", JsonValueKind.True, JsonValueKind.False);
            RequireKind(root, "nodes", "cluster", JsonValueKind.Array);
            RequireKind(root, "links", "cluster", JsonValueKind.Array);
            var ids = new Dictionary<string, List<string?>>(StringComparer.Ordinal);
            if (root.TryGetProperty("nodes", out var nodes))
            {
                var i = 0;
                foreach (var n in nodes.EnumerateArray())
                {
                    var where = $"node {i++}";
                    if (n.ValueKind != JsonValueKind.Object)
                        throw new FormatException($"Expected a JSON object for {where} of 'nodes', got {n.ValueKind}.");
                    RequireKind(n, "id", where, JsonValueKind.String);
                    RequireKind(n, "name", where, JsonValueKind.String);
                    RequireKind(n, "state", where, JsonValueKind.String);
                    RequireKind(n, "version", where, JsonValueKind.String);
                    RequireKind(n, "portNumber", where, JsonValueKind.Number);
                    var id = GetString(n, "id");
                    if (string.IsNullOrEmpty(id))
                        throw new FormatException($"{where} of 'nodes' has no 'id'.");
                    if (!ids.TryGetValue(id!, out var states)) ids[id!] = states = new List<string?>();
                    states.Add(GetString(n, "state"));
                }
            }
            foreach (var pair in ids)
            {
                var live = pair.Value.Count(st => !string.Equals(st, nameof(NodeState.OFFLINE), StringComparison.OrdinalIgnoreCase));
                if (live > 1)
                    throw new FormatException($"The node id '{pair.Key}' appears {live} times in 'nodes' on rows that are not OFFLINE: the answer does not describe one cluster consistently.");
            }
            var cluster = ReadCluster(root);
            if (ids.Any(p => p.Value.Count > 1)) cluster = WithoutStaleDuplicates(cluster);
            if (cluster.StateText is null && cluster.Nodes.Count == 0 && cluster.Links.Count == 0)
                throw new FormatException("The JSON has no 'state', 'nodes' or 'links': it is not a rolling-upgrade cluster.");
            return cluster;
        }

        /// <summary>Keeps one row per id: the row that is not OFFLINE (else the first); says which rows were dropped.</summary>
        private static ZduCluster WithoutStaleDuplicates(ZduCluster cluster)
        {
            var kept = new List<ZduNode>();
            var warnings = new List<string>(cluster.Warnings);
            foreach (var group in cluster.Nodes.GroupBy(n => n.Id, StringComparer.Ordinal))
            {
                var rows = group.ToList();
                var winner = rows.FirstOrDefault(n => n.State != NodeState.OFFLINE) ?? rows[0];
                if (rows.Count > 1)
                {
                    var dropped = rows.Where(r => !ReferenceEquals(r, winner)).Select(r => $"{r.StateText ?? "no state"} at {r.IpAddress ?? "no address"}");
                    warnings.Add($"The node id '{group.Key}' appears {rows.Count} times in /rest/zdu/cluster: a node that came back on a new address leaves a stale OFFLINE row with its id. "
                        + $"Using the {winner.StateText ?? "first"} row at {winner.IpAddress ?? "no address"}; ignoring {string.Join(", ", dropped)}.");
                }
            }
            foreach (var n in cluster.Nodes)
            {
                var rows = cluster.Nodes.Where(r => string.Equals(r.Id, n.Id, StringComparison.Ordinal)).ToList();
                var winner = rows.FirstOrDefault(r => r.State != NodeState.OFFLINE) ?? rows[0];
                if (!ReferenceEquals(n, winner)) continue;
                n.StaleAddresses = rows.Where(r => !ReferenceEquals(r, winner) && r.IpAddress is not null).Select(r => r.IpAddress!).ToArray();
                kept.Add(n);
            }
            cluster.Nodes = kept;
            cluster.Warnings = warnings;
            return cluster;
        }

        private static void RequireKind(JsonElement e, string name, string what, params JsonValueKind[] kinds)
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null || Array.IndexOf(kinds, v.ValueKind) >= 0) return;
            throw new FormatException($"The {what}'s '{name}' is {v.ValueKind}, expected {string.Join(" or ", kinds)}.");
        }

        public static ZduNode ParseNode(string json)
        {
            using var doc = JsonDocument.Parse(json);
            return ReadNode(RequireObject(doc.RootElement, "node"));
        }

        public static ZduStateResponse ParseState(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var root = RequireObject(doc.RootElement, "state");
            var text = GetString(root, "state");
            return new ZduStateResponse
            {
                StateText = text,
                State = ParseEnum<ClusterState>(text),
                BuildInfo = root.TryGetProperty("buildInfo", out var bi) && bi.ValueKind == JsonValueKind.Object ? ReadNode(bi) : null,
            };
        }

        internal static ZduCluster ReadCluster(JsonElement e)
        {
            var stateText = GetString(e, "state");
            return new ZduCluster
            {
                UpgradeModeEnabled = GetBool(e, "upgradeModeEnabled") ?? false,
                HasFinalizationTasks = GetBool(e, "hasFinalizationTasks"),
                StateText = stateText,
                State = ParseEnum<ClusterState>(stateText),
                OriginalVersion = GetString(e, "originalVersion"),
                Nodes = e.TryGetProperty("nodes", out var nodes) && nodes.ValueKind == JsonValueKind.Array
                    ? nodes.EnumerateArray().Where(n => n.ValueKind == JsonValueKind.Object).Select(ReadNode).ToArray()
                    : Array.Empty<ZduNode>(),
                Links = ReadLinks(e),
            };
        }

        internal static ZduNode ReadNode(JsonElement e)
        {
            var stateText = GetString(e, "state");
            return new ZduNode
            {
                Id = GetString(e, "id"),
                Name = GetString(e, "name"),
                IpAddress = GetString(e, "ipAddress"),
                PortNumber = GetInt(e, "portNumber"),
                StateText = stateText,
                State = ParseEnum<NodeState>(stateText),
                TasksTotal = GetInt(e, "tasksTotal"),
                ActiveUserCount = GetInt(e, "activeUserCount"),
                BuildNumber = GetString(e, "buildNumber"),
                Version = GetString(e, "version"),
                Local = GetBool(e, "local") ?? false,
                Links = ReadLinks(e),
            };
        }

        public static TEnum ParseEnum<TEnum>(string? text) where TEnum : struct, Enum =>
            text is not null && Enum.TryParse<TEnum>(text.Trim(), ignoreCase: true, out var value) && Enum.IsDefined(typeof(TEnum), value)
                ? value
                : default;

        private static JsonElement RequireObject(JsonElement e, string what) =>
            e.ValueKind == JsonValueKind.Object
                ? e
                : throw new FormatException($"Expected a JSON object for the {what}, got {e.ValueKind}.");

        private static IReadOnlyList<ZduLink> ReadLinks(JsonElement e)
        {
            if (!e.TryGetProperty("links", out var links) || links.ValueKind != JsonValueKind.Array) return Array.Empty<ZduLink>();
            var list = new ZduLinkList();
            foreach (var l in links.EnumerateArray())
            {
                if (l.ValueKind != JsonValueKind.Object) continue;
                var rel = GetString(l, "rel");
                if (rel is not null) list.Add(new ZduLink(rel, GetString(l, "href")));
            }
            return list;
        }

        private static string? GetString(JsonElement e, string name) =>
            e.TryGetProperty(name, out var v)
                ? v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString(),
                    JsonValueKind.Number => v.GetRawText(),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => null,
                }
                : null;

        private static int? GetInt(JsonElement e, string name)
        {
            if (!e.TryGetProperty(name, out var v)) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i)) return i;
            if (v.ValueKind == JsonValueKind.String && int.TryParse(v.GetString(), out var s)) return s;
            return null;
        }

        private static bool? GetBool(JsonElement e, string name)
        {
            if (!e.TryGetProperty(name, out var v)) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.String when bool.TryParse(v.GetString(), out var b) => b,
                _ => null,
            };
        }
    }
}
