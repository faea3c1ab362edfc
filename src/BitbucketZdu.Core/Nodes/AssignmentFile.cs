using System;
using System.Collections.Generic;
using System.Text;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>
    /// Reads and edits variable assignments in Bitbucket's bin scripts: <c>[export ]NAME=value</c> in .sh files and
    /// <c>set NAME=value</c> in .bat files. Comments are ignored; every active assignment of a name is edited.
    /// </summary>
    public static class AssignmentFile
    {
        private static Regex Pattern(string name, ShellPlatform platform) => platform == ShellPlatform.Posix
            ? new Regex(@"^(?<pre>[ \t]*(?:export[ \t]+)?" + Regex.Escape(name) + @"=)(?<value>.*?)(?<eol>\r?)$", RegexOptions.Multiline)
            : new Regex(@"^(?<pre>[ \t]*set[ \t]+""?" + Regex.Escape(name) + @"=)(?<value>.*?)(?<eol>\r?)$", RegexOptions.Multiline | RegexOptions.IgnoreCase);

        /// <summary>The raw text after <c>NAME=</c> of the last active assignment, or null.</summary>
        public static string? GetRaw(string text, string name, ShellPlatform platform)
        {
            string? raw = null;
            foreach (Match m in Pattern(name, platform).Matches(text)) raw = m.Groups["value"].Value;
            if (raw is not null && platform == ShellPlatform.Windows && raw.EndsWith("\"", StringComparison.Ordinal) && IsQuotedSet(text, name)) raw = raw.Substring(0, raw.Length - 1);
            return raw;
        }

        private static bool IsQuotedSet(string text, string name) =>
            Regex.IsMatch(text, @"^[ \t]*set[ \t]+""" + Regex.Escape(name) + "=", RegexOptions.Multiline | RegexOptions.IgnoreCase);

        /// <summary>The value of the last active assignment with surrounding quotes removed, or null.</summary>
        public static string? Get(string text, string name, ShellPlatform platform)
        {
            var raw = GetRaw(text, name, platform);
            if (raw is null) return null;
            raw = raw.Trim();
            var hash = platform == ShellPlatform.Posix && !raw.StartsWith("\"", StringComparison.Ordinal) && !raw.StartsWith("'", StringComparison.Ordinal) ? raw.IndexOf(" #", StringComparison.Ordinal) : -1;
            if (hash >= 0) raw = raw.Substring(0, hash).TrimEnd();
            if (raw.Length >= 2 && (raw[0] == '"' && raw[raw.Length - 1] == '"' || raw[0] == '\'' && raw[raw.Length - 1] == '\''))
                raw = raw.Substring(1, raw.Length - 2);
            return raw;
        }

        /// <summary>Sets the raw value of every active assignment of <paramref name="name"/>, or appends one.</summary>
        public static string SetRaw(string text, string name, string rawValue, ShellPlatform platform)
        {
            var regex = Pattern(name, platform);
            if (regex.IsMatch(text))
            {
                var quoted = platform == ShellPlatform.Windows && IsQuotedSet(text, name);
                return regex.Replace(text, m => m.Groups["pre"].Value + rawValue + (quoted ? "\"" : "") + m.Groups["eol"].Value);
            }
            var newline = text.Contains("\r\n") ? "\r\n" : "\n";
            var sb = new StringBuilder(text);
            if (text.Length > 0 && !text.EndsWith("\n", StringComparison.Ordinal)) sb.Append(newline);
            sb.Append(platform == ShellPlatform.Posix ? "export " : "set ").Append(name).Append('=').Append(rawValue).Append(newline);
            return sb.ToString();
        }

        /// <summary>A value written as a sh word (bare when safe) or as-is for .bat.</summary>
        public static string Literal(string value, ShellPlatform platform) =>
            platform == ShellPlatform.Windows || Regex.IsMatch(value, @"^[A-Za-z0-9_/.:@%+,=-]+$") ? value : ShellQuote.Sh(value);

        /// <summary>A line diff of two versions of one file ("--- a/x", "+++ b/x", "-old", "+new").</summary>
        public static string Diff(string path, string before, string after)
        {
            if (before == after) return "";
            var a = SplitLines(before);
            var b = SplitLines(after);
            var sb = new StringBuilder();
            sb.Append("--- a/").Append(path).Append('\n').Append("+++ b/").Append(path).Append('\n');
            // LCS on lines: files are small (scripts, unit files), so O(n*m) is fine.
            var lcs = new int[a.Count + 1, b.Count + 1];
            for (var i = a.Count - 1; i >= 0; i--)
                for (var j = b.Count - 1; j >= 0; j--)
                    lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            int x = 0, y = 0;
            while (x < a.Count || y < b.Count)
            {
                if (x < a.Count && y < b.Count && a[x] == b[y]) { x++; y++; }
                else if (x < a.Count && (y == b.Count || lcs[x + 1, y] >= lcs[x, y + 1])) sb.Append('-').Append(a[x++]).Append('\n');
                else sb.Append('+').Append(b[y++]).Append('\n');
            }
            return sb.ToString();
        }

        private static List<string> SplitLines(string text) =>
            new List<string>(text.Replace("\r\n", "\n").TrimEnd('\n').Split('\n'));
    }
}
