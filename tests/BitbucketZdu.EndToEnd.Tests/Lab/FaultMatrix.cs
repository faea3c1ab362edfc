using System.Text.Json;
using System.Text.Json.Serialization;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>One row of out/reliability/fault-matrix.json.</summary>
public sealed record FaultOutcome(
    [property: JsonPropertyName("case")] string Case,
    [property: JsonPropertyName("outcome")] string Outcome,
    [property: JsonPropertyName("errorId")] string? ErrorId,
    [property: JsonPropertyName("requests")] int Requests,
    [property: JsonPropertyName("failed")] int Failed,
    [property: JsonPropertyName("note")] string? Note);

/// <summary>
/// Collects each end-to-end case's outcome into <c>out/reliability/fault-matrix.json</c> (an array of {case, outcome,
/// errorId, requests, failed, note}); tools/New-ReliabilityReport.ps1 turns out/reliability/*.json into docs/reliability.md.
/// Rows are merged by case, so one test run (or a filtered one) updates only its own rows.
/// </summary>
public static class FaultMatrix
{
    private static readonly object Gate = new();
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string FilePath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "BitbucketZdu.sln"))) dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? Path.GetTempPath(), "out", "reliability", "fault-matrix.json");
        }
    }

    public static void Record(FaultOutcome outcome)
    {
        lock (Gate)
        {
            var file = FilePath;
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var rows = new List<FaultOutcome>();
            try
            {
                if (File.Exists(file)) rows = JsonSerializer.Deserialize<List<FaultOutcome>>(File.ReadAllText(file)) ?? rows;
            }
            catch (JsonException)
            {
            }
            rows.RemoveAll(r => r.Case == outcome.Case);
            rows.Add(outcome);
            var tmp = file + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(rows.OrderBy(r => r.Case, StringComparer.Ordinal), Json));
            File.Move(tmp, file, overwrite: true);
        }
    }
}
