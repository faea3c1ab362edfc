using System.Text.Json;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>One end-to-end case as the lab reports it.</summary>
public sealed record FaultOutcome(string Case, string Outcome, string? ErrorId, int Requests, int Failed, string? Note);

/// <summary>
/// Collects each end-to-end case into <c>out/reliability/fault-matrix.json</c>, a suite file in the shape
/// tools/New-ReliabilityReport.ps1 reads: <c>{ "Suite": "Fault matrix", "Cases": [ { Case, Area, Outcome, ErrorId,
/// Message, Requests, RequestsFailed } ] }</c>. A case is recorded only after its assertions passed, so its outcome is
/// "survived"; what happened is the message. Rows are merged by case, so a filtered run updates only its own rows.
/// </summary>
public static class FaultMatrix
{
    private const string SuiteName = "Fault matrix";
    private static readonly object Gate = new();
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private sealed record Row(string Case, string Area, string Outcome, string? ErrorId, string? Message, int Requests, int RequestsFailed);

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
            var rows = new List<Row>();
            try
            {
                if (File.Exists(file))
                {
                    using var doc = JsonDocument.Parse(File.ReadAllText(file));
                    if (doc.RootElement.TryGetProperty("Cases", out var cases))
                        rows = cases.Deserialize<List<Row>>() ?? rows;
                }
            }
            catch (JsonException)
            {
            }
            rows.RemoveAll(r => r.Case == outcome.Case);
            var message = outcome.Note is null ? outcome.Outcome : outcome.Outcome + " (" + outcome.Note + ")";
            rows.Add(new Row(outcome.Case, "end-to-end", "survived", outcome.ErrorId, message, outcome.Requests, outcome.Failed));
            var tmp = file + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(new { Suite = SuiteName, Cases = rows.OrderBy(r => r.Case, StringComparer.Ordinal) }, Json));
            File.Move(tmp, file, overwrite: true);
        }
    }
}
