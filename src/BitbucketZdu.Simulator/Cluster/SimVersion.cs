using System.Globalization;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Simulator.Cluster;

/// <summary>A Bitbucket release number as the simulated cluster compares it (major.minor.bugfix).</summary>
public readonly partial record struct SimVersion(int Major, int Minor, int Bugfix) : IComparable<SimVersion>
{
    [GeneratedRegex(@"^(\d{1,4})\.(\d{1,4})\.(\d{1,6})$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static bool TryParse(string? text, out SimVersion version)
    {
        version = default;
        var m = text is null ? null : Pattern().Match(text.Trim());
        if (m is null || !m.Success) return false;
        version = new SimVersion(Int(m.Groups[1].Value), Int(m.Groups[2].Value), Int(m.Groups[3].Value));
        return true;
    }

    public static SimVersion Parse(string text) =>
        TryParse(text, out var v) ? v : throw new FormatException($"'{text}' is not a Bitbucket version such as 8.19.3.");

    /// <summary>Bitbucket's build number (the schema version the "database" is on): 8.19.3 becomes 8019003.</summary>
    public string BuildNumber => (Major * 1_000_000 + Minor * 1_000 + Bugfix).ToString(CultureInfo.InvariantCulture);

    public bool SameLine(SimVersion other) => Major == other.Major && Minor == other.Minor;

    public int CompareTo(SimVersion other) =>
        Major != other.Major ? Major.CompareTo(other.Major) : Minor != other.Minor ? Minor.CompareTo(other.Minor) : Bugfix.CompareTo(other.Bugfix);

    public static bool operator <(SimVersion a, SimVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(SimVersion a, SimVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(SimVersion a, SimVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(SimVersion a, SimVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Bugfix}");

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);
}
