using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;

namespace BitbucketZdu.Loading
{
    /// <summary>
    /// Runs when Import-Module loads BitbucketZdu.dll. On Windows PowerShell 5.1 (.NET Framework) it binds the module's
    /// own dependencies from its folder (<see cref="BindingPolicy"/>) and allows TLS 1.2 (1.3 where present) for the
    /// HTTP calls, which there follow <see cref="ServicePointManager.SecurityProtocol"/>. On PowerShell 7 it does
    /// nothing: .NET binds to higher versions by itself and HttpClient takes the operating system's protocols.
    /// This type must not touch any dependency's types: it runs before they can be bound.
    /// </summary>
    public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        private static readonly object Gate = new object();
        private static Dictionary<string, (AssemblyName Name, string Path)>? _shipped;
        private static readonly Dictionary<string, Assembly> Loaded = new Dictionary<string, Assembly>(StringComparer.OrdinalIgnoreCase);

        /// <summary>Whether this process runs on .NET Framework (Windows PowerShell 5.1).</summary>
        internal static bool IsNetFramework =>
            RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.OrdinalIgnoreCase);

        /// <summary>The lowest .NET that PowerShell 7 must run on: .NET 8 (PowerShell 7.4), which ships the System.Text.Json 8 the module references.</summary>
        internal static readonly Version NetFloor = new Version(8, 0);

        /// <summary>
        /// Why this runtime cannot run the module, or null. Windows PowerShell 5.1 (.NET Framework) is supported; on
        /// PowerShell 7 the floor is 7.4 (.NET 8): 7.2 (.NET 6) and 7.3 (.NET 7) ship an older System.Text.Json than the
        /// module references, so their first JSON parse would fail. A manifest cannot say "5.1 or 7.4+", so it is said here.
        /// </summary>
        internal static string? RuntimeFloorError(bool isNetFramework, Version runtime, string? powerShellVersion) =>
            isNetFramework || runtime >= NetFloor
                ? null
                : $"BitbucketZdu needs PowerShell 7.4 or later (or Windows PowerShell 5.1); this is PowerShell {powerShellVersion ?? "?"} on .NET {runtime}. " +
                  "Install PowerShell 7.4+ (in Azure Automation: a runtime environment of PowerShell 7.4), then import the module again.";

        public void OnImport()
        {
            var floor = RuntimeFloorError(IsNetFramework, Environment.Version, typeof(PSObject).Assembly.GetName().Version?.ToString());
            if (floor is not null)
                throw new PSNotSupportedException(floor);
            if (!IsNetFramework) return;
            lock (Gate)
            {
                if (_shipped is null)
                {
                    _shipped = ReadFolder(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!);
                    AppDomain.CurrentDomain.AssemblyResolve += OnAssemblyResolve;
                }
            }
            EnableModernTls();
        }

        public void OnRemove(PSModuleInfo psModuleInfo)
        {
            lock (Gate)
            {
                if (_shipped is null) return;
                AppDomain.CurrentDomain.AssemblyResolve -= OnAssemblyResolve;
                _shipped = null;
            }
        }

        /// <summary>The assemblies in the module folder (not the module's own two: they are loaded already).</summary>
        internal static Dictionary<string, (AssemblyName Name, string Path)> ReadFolder(string folder)
        {
            var map = new Dictionary<string, (AssemblyName, string)>(StringComparer.OrdinalIgnoreCase);
            foreach (var file in Directory.GetFiles(folder, "*.dll"))
            {
                try
                {
                    var name = AssemblyName.GetAssemblyName(file);
                    if (name.Name is { } n) map[n] = (name, file);
                }
                catch (BadImageFormatException) { }   // not a managed assembly: nothing to resolve
            }
            return map;
        }

        /// <summary>The shipped file that may answer this request, or null (then the host's binder reports its own error).</summary>
        internal static string? Choose(Dictionary<string, (AssemblyName Name, string Path)> shipped, AssemblyName requested) =>
            requested.Name is { } n && shipped.TryGetValue(n, out var s) && BindingPolicy.Accepts(requested, s.Name) ? s.Path : null;

        private static Assembly? OnAssemblyResolve(object? sender, ResolveEventArgs args)
        {
            AssemblyName requested;
            try { requested = new AssemblyName(args.Name); }
            catch (Exception) { return null; }
            lock (Gate)
            {
                if (_shipped is null) return null;
                var path = Choose(_shipped, requested);
                if (path is null) return null;
                if (!Loaded.TryGetValue(path, out var assembly))
                {
                    assembly = Assembly.LoadFrom(path);
                    Loaded[path] = assembly;
                }
                return assembly;
            }
        }

        private static void EnableModernTls()
        {
            try
            {
                int? tls13 = Enum.TryParse<SecurityProtocolType>("Tls13", out var t13) ? (int)t13 : (int?)null;
                var current = (int)ServicePointManager.SecurityProtocol;
                var wanted = BindingPolicy.WithModernTls(current, (int)SecurityProtocolType.Tls12, tls13);
                if (wanted != current) ServicePointManager.SecurityProtocol = (SecurityProtocolType)wanted;
            }
            catch (NotSupportedException)
            {
                // TLS 1.3 named by the runtime but not supported by the operating system: allow 1.2 alone.
                ServicePointManager.SecurityProtocol |= SecurityProtocolType.Tls12;
            }
        }
    }
}
