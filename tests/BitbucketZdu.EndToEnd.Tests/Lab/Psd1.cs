using System.Collections;
using System.Globalization;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>Writes a cluster profile (hashtables, arrays, strings, numbers) as the PowerShell data file users keep.</summary>
public static class Psd1
{
    public static string Write(IDictionary data)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture);
        Value(w, data, "");
        w.WriteLine();
        return w.ToString();
    }

    private static void Value(TextWriter w, object? value, string indent)
    {
        switch (value)
        {
            case null: w.Write("$null"); break;
            case string s: w.Write("'" + s.Replace("'", "''") + "'"); break;
            case bool b: w.Write(b ? "$true" : "$false"); break;
            case int or long or double: w.Write(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
            case IDictionary d:
                w.WriteLine("@{");
                foreach (DictionaryEntry e in d)
                {
                    w.Write(indent + "    " + Key((string)e.Key) + " = ");
                    Value(w, e.Value, indent + "    ");
                    w.WriteLine();
                }
                w.Write(indent + "}");
                break;
            case IEnumerable list:
                w.WriteLine("@(");
                foreach (var item in list)
                {
                    w.Write(indent + "    ");
                    Value(w, item, indent + "    ");
                    w.WriteLine();
                }
                w.Write(indent + ")");
                break;
            default: throw new ArgumentException($"Cannot write a {value.GetType().Name} to a profile.");
        }
    }

    /// <summary>A bare key when it is a word (Name), quoted otherwise ('lb1-ssh').</summary>
    private static string Key(string key) =>
        System.Text.RegularExpressions.Regex.IsMatch(key, "^[A-Za-z_][A-Za-z0-9_]*$") ? key : "'" + key.Replace("'", "''") + "'";
}
