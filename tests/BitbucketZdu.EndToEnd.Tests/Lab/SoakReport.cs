using System.Text.Json;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>One row of the soak suite: an upgrade round (Outcome "upgraded") or a leak check ("no leak" / "LEAK").</summary>
public sealed record SoakRow(string Case, string Area, string Outcome, string? ErrorId, string Message, int? Requests, int? RequestsFailed);

/// <summary>
/// Writes <c>out/reliability/soak.json</c> beside the fault matrix, in the suite shape tools/New-ReliabilityReport.ps1
/// reads: <c>{ "Suite": "Soak", "Cases": [ { Case, Area, Outcome, ErrorId, Message, Requests, RequestsFailed } ] }</c>.
/// Each soak variant replaces its own rows (by Area), so a filtered run updates only what it ran.
/// </summary>
public static class SoakReport
{
    public const string SuiteName = "Soak";
    public const string Upgraded = "upgraded";
    public const string NoLeak = "no leak";
    public const string Leak = "LEAK";

    public static string FilePath => Path.Combine(Path.GetDirectoryName(FaultMatrix.FilePath)!, "soak.json");

    private static readonly object Gate = new();

    public static void Record(string area, IEnumerable<SoakRow> rows)
    {
        lock (Gate)
        {
            var file = FilePath;
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var all = new List<SoakRow>();
            try
            {
                if (File.Exists(file))
                {
                    using var doc = JsonDocument.Parse(File.ReadAllText(file));
                    if (doc.RootElement.TryGetProperty("Cases", out var cases)) all = cases.Deserialize<List<SoakRow>>() ?? all;
                }
            }
            catch (JsonException)
            {
            }
            all.RemoveAll(r => r.Area == area);
            all.AddRange(rows);
            Write(file, all.OrderBy(r => r.Area, StringComparer.Ordinal).ToList());
        }
    }

    private static void Write(string file, IReadOnlyList<SoakRow> rows)
    {
        var tmp = file + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new { Suite = SuiteName, Cases = rows }, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, file, overwrite: true);
    }
}
