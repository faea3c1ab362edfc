using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace BitbucketZdu.Completion
{
    /// <summary>Completes cluster profiles: folders (to walk into) and *.psd1 files, relative to the current location as typed.</summary>
    public sealed class ProfilePathCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            try
            {
                var typed = CompletionText.Unquote(wordToComplete ?? string.Empty);
                var cwd = CurrentFileSystemLocation() ?? Directory.GetCurrentDirectory();
                var cut = Math.Max(typed.LastIndexOf('/'), typed.LastIndexOf('\\'));
                var typedDir = cut >= 0 ? typed.Substring(0, cut + 1) : string.Empty;
                var prefix = cut >= 0 ? typed.Substring(cut + 1) : typed;
                var dir = typedDir.Length == 0 ? cwd : Path.Combine(cwd, ExpandHome(typedDir));
                if (!Directory.Exists(dir)) return Array.Empty<CompletionResult>();

                var results = new List<CompletionResult>();
                foreach (var d in Directory.EnumerateDirectories(dir).Where(p => Starts(Path.GetFileName(p), prefix)).OrderBy(p => p, StringComparer.OrdinalIgnoreCase))
                {
                    var text = typedDir + Path.GetFileName(d) + Path.DirectorySeparatorChar;
                    results.Add(new CompletionResult(CompletionText.Quote(text), Path.GetFileName(d), CompletionResultType.ProviderContainer, d));
                }
                foreach (var f in Directory.EnumerateFiles(dir, "*.psd1").Where(p => Starts(Path.GetFileName(p), prefix)).OrderBy(p => p, StringComparer.OrdinalIgnoreCase))
                {
                    var text = typedDir + Path.GetFileName(f);
                    results.Add(new CompletionResult(CompletionText.Quote(text), Path.GetFileName(f), CompletionResultType.ProviderItem, f));
                }
                return results;
            }
            catch (Exception)
            {
                return Array.Empty<CompletionResult>();
            }
        }

        private static bool Starts(string name, string prefix) => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase);

        private static string ExpandHome(string path) =>
            path.StartsWith("~", StringComparison.Ordinal)
                ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path.Substring(1)
                : path;

        private static string? CurrentFileSystemLocation()
        {
            try
            {
                using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
                var location = ps.AddCommand("Microsoft.PowerShell.Management\\Get-Location").AddParameter("PSProvider", "FileSystem").Invoke();
                return location.Count == 1 ? (location[0].BaseObject as PathInfo)?.ProviderPath : null;
            }
            catch (Exception)
            {
                return null;
            }
        }
    }
}
