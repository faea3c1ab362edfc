using System.Text.Json;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>One row of the soak suite: an upgrade round (Outcome "upgraded") or a leak check ("no leak" / "LEAK").</summary>
public sealed record SoakRow(string Case, string Area, string Outcome, string? ErrorId, string Message, int? Requests, int? RequestsFailed);

/// <summary>
/// Writes <c>out/reliability/soak.json</c> beside the fault matrix, in the suite shape tools/New-ReliabilityReport.ps1
/// reads: <c>{ "Suite": "Soak", "Cases": [ { Case, Area, Outcome, ErrorId, Message, Requests, RequestsFailed } ] }</c>.
/// The soak is one test, so the file is written whole (rows of an earlier run are replaced).
/// </summary>
public static class SoakReport
{
    public const string SuiteName = "Soak";
    public const string Upgraded = "upgraded";
    public const string NoLeak = "no leak";
    public const string Leak = "LEAK";

    public static string FilePath => Path.Combine(Path.GetDirectoryName(FaultMatrix.FilePath)!, "soak.json");

    public static void Write(IEnumerable<SoakRow> rows)
    {
        var file = FilePath;
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var tmp = file + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new { Suite = SuiteName, Cases = rows }, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, file, overwrite: true);
    }
}
