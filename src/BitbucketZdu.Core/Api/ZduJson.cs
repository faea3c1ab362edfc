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
            var list = new List<ZduLink>();
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
