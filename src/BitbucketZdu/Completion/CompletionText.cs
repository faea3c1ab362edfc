using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace BitbucketZdu.Completion
{
    /// <summary>Shared helpers of the argument completers: matching, quoting, result building.</summary>
    internal static class CompletionText
    {
        /// <summary>The candidates that start with what was typed (quotes stripped; case-insensitive), quoted when needed, sorted.</summary>
        public static IEnumerable<CompletionResult> Match(string? wordToComplete, IEnumerable<(string Value, string ToolTip)> candidates)
        {
            var typed = Unquote(wordToComplete ?? string.Empty);
            var pattern = new WildcardPattern(WildcardPattern.Escape(typed) + "*", WildcardOptions.IgnoreCase);
            return candidates
                .Where(c => !string.IsNullOrEmpty(c.Value) && pattern.IsMatch(c.Value))
                .GroupBy(c => c.Value, StringComparer.OrdinalIgnoreCase).Select(g => g.First())
                .OrderBy(c => c.Value, StringComparer.OrdinalIgnoreCase)
                .Select(c => new CompletionResult(Quote(c.Value), c.Value, CompletionResultType.ParameterValue,
                    string.IsNullOrEmpty(c.ToolTip) ? c.Value : c.ToolTip))
                .ToArray();
        }

        public static string Unquote(string text) =>
            text.Length > 0 && (text[0] == '\'' || text[0] == '"') ? text.Substring(1).TrimEnd(text[0]) : text;

        /// <summary>Single-quotes a value that PowerShell would otherwise split or interpret.</summary>
        public static string Quote(string value) =>
            value.IndexOfAny(new[] { ' ', '\t', '$', '`', '\'', '"', ';', '(', ')', '{', '}', '@', '&', '#', ',', '|', '<', '>' }) >= 0
                ? "'" + value.Replace("'", "''") + "'"
                : value;
    }
}
