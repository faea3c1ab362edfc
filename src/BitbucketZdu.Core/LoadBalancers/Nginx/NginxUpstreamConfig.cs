using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Core.LoadBalancers.Nginx
{
    /// <summary>One <c>server</c> line of an upstream block.</summary>
    public sealed class NginxUpstreamServer
    {
        public NginxUpstreamServer(string address, bool down, bool backup, int line)
        {
            Address = address;
            Down = down;
            Backup = backup;
            Line = line;
        }

        public string Address { get; }
        public bool Down { get; }
        public bool Backup { get; }
        /// <summary>1-based line number in the file.</summary>
        public int Line { get; }
    }

    /// <summary>
    /// Reads and edits the <c>server</c> lines of an <c>upstream</c> block, changing only the <c>down</c> flag and
    /// keeping everything else (comments, spacing, other parameters) as it was. One server directive per line.
    /// </summary>
    public static class NginxUpstreamConfig
    {
        private static readonly Regex UpstreamStart = new Regex(@"^\s*upstream\s+(?<name>[^\s{]+)\s*\{", RegexOptions.Compiled);
        private static readonly Regex ServerLine = new Regex(@"^(?<lead>\s*server\s+)(?<addr>[^\s;]+)(?<params>[^;#]*);", RegexOptions.Compiled);
        private static readonly Regex DownFlag = new Regex(@"\s+down(?=\s|$)", RegexOptions.Compiled);

        /// <summary>The names of every upstream block in the text.</summary>
        public static IReadOnlyList<string> UpstreamNames(string text) =>
            SplitLines(text).Select(l => UpstreamStart.Match(StripComment(l))).Where(m => m.Success).Select(m => m.Groups["name"].Value).ToList();

        /// <summary>The servers of <paramref name="upstream"/>, or null when the text has no such upstream.</summary>
        public static IReadOnlyList<NginxUpstreamServer>? Parse(string text, string upstream)
        {
            var range = FindBlock(SplitLines(text), upstream);
            if (range is null) return null;
            var lines = SplitLines(text);
            var servers = new List<NginxUpstreamServer>();
            for (var i = range.Value.Start; i <= range.Value.End; i++)
            {
                var m = ServerLine.Match(StripComment(lines[i]));
                if (!m.Success) continue;
                var parameters = m.Groups["params"].Value;
                servers.Add(new NginxUpstreamServer(m.Groups["addr"].Value, DownFlag.IsMatch(parameters), Regex.IsMatch(parameters, @"\sbackup(\s|$)"), i + 1));
            }
            return servers;
        }

        /// <summary>The text with <paramref name="address"/>'s <c>down</c> flag set or cleared; the same text when it already is.</summary>
        public static string SetDown(string text, string upstream, string address, bool down)
        {
            var lines = SplitLines(text);
            var range = FindBlock(lines, upstream) ?? throw new ArgumentException($"No upstream '{upstream}'.", nameof(upstream));
            var found = false;
            for (var i = range.Start; i <= range.End; i++)
            {
                var code = StripComment(lines[i]);
                var m = ServerLine.Match(code);
                if (!m.Success || !string.Equals(m.Groups["addr"].Value, address, StringComparison.OrdinalIgnoreCase)) continue;
                found = true;
                var parameters = m.Groups["params"].Value;
                var isDown = DownFlag.IsMatch(parameters);
                if (isDown == down) continue;
                var newParams = down ? parameters.TrimEnd() + " down" : DownFlag.Replace(parameters, "");
                lines[i] = m.Groups["lead"].Value + m.Groups["addr"].Value + newParams + ";" + lines[i].Substring(m.Index + m.Length);
            }
            if (!found) throw new ArgumentException($"Upstream '{upstream}' has no server '{address}'.", nameof(address));
            var newline = text.Contains("\r\n") ? "\r\n" : "\n";
            return string.Join(newline, lines);
        }

        private static (int Start, int End)? FindBlock(string[] lines, string upstream)
        {
            for (var i = 0; i < lines.Length; i++)
            {
                var m = UpstreamStart.Match(StripComment(lines[i]));
                if (!m.Success || m.Groups["name"].Value != upstream) continue;
                var depth = 0;
                for (var j = i; j < lines.Length; j++)
                {
                    var code = StripComment(lines[j]);
                    var from = j == i ? m.Index + m.Length - 1 : 0;
                    for (var k = from; k < code.Length; k++)
                    {
                        if (code[k] == '{') depth++;
                        else if (code[k] == '}' && --depth == 0) return (i + 1 <= j ? i + 1 : i, j);
                    }
                }
                return (i + 1, lines.Length - 1);
            }
            return null;
        }

        private static string[] SplitLines(string text) => text.Replace("\r\n", "\n").Split('\n');

        private static string StripComment(string line)
        {
            var hash = line.IndexOf('#');
            return hash >= 0 ? line.Substring(0, hash) : line;
        }
    }
}
