using System.Globalization;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>"--name value" options and "--flag" switches, with clear errors for the unknown and the missing.</summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public CliArgs(IEnumerable<string> args, params string[] flags)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"Unexpected argument '{a}'.");
            var eq = a.IndexOf('=');
            if (eq > 0) _values[a[2..eq]] = a[(eq + 1)..];
            else if (flags.Contains(a[2..])) _values[a[2..]] = null;
            else if (i + 1 < list.Count) _values[a[2..]] = list[++i];
            else throw new UsageException($"Option '{a}' needs a value.");
        }
    }

    public bool Flag(string name)
    {
        _used.Add(name);
        return _values.ContainsKey(name);
    }

    public string? Optional(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var v) ? v : null;
    }

    public string Required(string name) => Optional(name) ?? throw new UsageException($"Option '--{name}' is required.");

    public int Int(string name, int fallback) =>
        Optional(name) is { } s ? int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i
            : throw new UsageException($"Option '--{name}' needs a number, not '{s}'.") : fallback;

    /// <summary>Fails on options nobody asked for (typos).</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new UsageException("Unknown option(s): " + string.Join(", ", unknown.Select(u => "--" + u)));
    }
}

public sealed class UsageException(string message) : Exception(message);
