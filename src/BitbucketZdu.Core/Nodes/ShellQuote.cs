using System.Collections.Generic;
using System.Text;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>Quoting for the two script languages node commands are written in.</summary>
    public static class ShellQuote
    {
        /// <summary>A POSIX sh single-quoted word: safe for any content.</summary>
        public static string Sh(string value) => "'" + value.Replace("'", "'\\''") + "'";

        /// <summary>A PowerShell single-quoted string: safe for any content.</summary>
        public static string Ps(string value) => "'" + value.Replace("'", "''") + "'";

        /// <summary>Quotes for the shell's platform.</summary>
        public static string For(ShellPlatform platform, string value) => platform == ShellPlatform.Posix ? Sh(value) : Ps(value);

        /// <summary>Prefixes a command with environment assignments in the shell's language.</summary>
        public static string WithEnvironment(ShellPlatform platform, string command, IReadOnlyDictionary<string, string>? environment)
        {
            if (environment is null || environment.Count == 0) return command;
            var sb = new StringBuilder();
            foreach (var kv in environment)
            {
                if (platform == ShellPlatform.Posix)
                    sb.Append("export ").Append(kv.Key).Append('=').Append(Sh(kv.Value)).Append('\n');
                else
                    sb.Append("$env:").Append(kv.Key).Append(" = ").Append(Ps(kv.Value)).Append('\n');
            }
            return sb.Append(command).ToString();
        }
    }
}
