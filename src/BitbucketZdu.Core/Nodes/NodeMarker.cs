using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>
    /// The module's bookkeeping on a node, as key=value lines: <c>.bbzdu-install</c> in an install dir it pre-staged
    /// (version, checksum, the dir it was staged next to, configured, start flags) and <c>bbzdu-node.state</c> in
    /// BITBUCKET_HOME (which install dir the module last started). A re-run reads them to find work already done.
    /// </summary>
    public sealed class NodeMarker
    {
        public const string InstallMarkerName = ".bbzdu-install";
        public const string HomeStateName = "bbzdu-node.state";

        private readonly SortedDictionary<string, string> _values = new SortedDictionary<string, string>(StringComparer.Ordinal);

        public string? this[string key]
        {
            get => _values.TryGetValue(key, out var v) ? v : null;
            set
            {
                if (value is null) _values.Remove(key);
                else _values[key] = value.Replace("\r", " ").Replace("\n", " ");
            }
        }

        public static NodeMarker Parse(string? text)
        {
            var m = new NodeMarker();
            if (text is null) return m;
            foreach (var line in text.Split('\n'))
            {
                var l = line.TrimEnd('\r');
                var eq = l.IndexOf('=');
                if (eq <= 0 || l.StartsWith("#", StringComparison.Ordinal)) continue;
                m._values[l.Substring(0, eq)] = l.Substring(eq + 1);
            }
            return m;
        }

        public override string ToString()
        {
            var sb = new StringBuilder("# Written by BitbucketZdu; read on re-runs. Safe to delete once the upgrade is finalized.\n");
            foreach (var kv in _values) sb.Append(kv.Key).Append('=').Append(kv.Value).Append('\n');
            return sb.ToString();
        }

        public IReadOnlyList<string> StartArguments =>
            (this["startArguments"] ?? "").Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries).ToList();
    }
}
