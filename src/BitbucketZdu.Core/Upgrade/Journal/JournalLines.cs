using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// The journal's JSON-lines format, shared by the stores: one <see cref="JournalEntry"/> per line, camelCase, nulls
    /// left out. A torn last line (what a crash mid-write leaves) is ignored; damage before it is an error.
    /// </summary>
    internal static class JournalLines
    {
        internal static readonly JsonSerializerOptions Json = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };

        internal static string Format(JournalEntry entry) => JsonSerializer.Serialize(entry, Json) + "\n";

        /// <param name="text">The whole journal.</param>
        /// <param name="where">The journal's place for the message, e.g. a blob URI.</param>
        /// <param name="moveAway">What the user does to start afresh, e.g. "rename the blob".</param>
        internal static List<JournalEntry> Parse(string text, string where, string moveAway)
        {
            var result = new List<JournalEntry>();
            var lines = text.Split('\n');
            var lastNonEmpty = Array.FindLastIndex(lines, l => l.Trim().Length > 0);
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.Length == 0) continue;
                try
                {
                    var e = JsonSerializer.Deserialize<JournalEntry>(line, Json);
                    if (e is not null) result.Add(e);
                }
                catch (JsonException ex)
                {
                    if (i == lastNonEmpty) continue;
                    throw new BbException("JournalCorrupt", BbErrorCategory.InvalidData,
                        $"The journal {where} is damaged at line {i + 1} ({ex.Message}). Inspect it; {moveAway} to start a fresh run.", where, ex);
                }
            }
            return result;
        }
    }
}
