using System;
using System.Reflection;

namespace BitbucketZdu.Loading
{
    /// <summary>
    /// The one decision of the Windows PowerShell dependency resolver, kept pure so that the module initializer and the
    /// binding-closure tests apply the same rule.
    /// <para>.NET Framework binds a strong-named reference only to the exact version it names unless a binding redirect
    /// says otherwise, and a module has no app.config. The module's own dependencies reference each other at versions
    /// that are not the ones shipped (System.Memory asks for System.Buffers 4.0.2.0, 4.0.3.0 ships), so Windows
    /// PowerShell would fail the first JSON parse. The resolver answers such a failed bind with the assembly shipped in
    /// the module folder when, and only when, it is the same assembly: same simple name, same public key token, neutral
    /// culture, and a version at least the one asked for. Anything else is left to the host: the module never answers
    /// for an assembly it does not ship, and never hands out an older version than the one asked for.</para>
    /// </summary>
    internal static class BindingPolicy
    {
        /// <summary>Whether the shipped assembly may stand in for the requested one.</summary>
        public static bool Accepts(AssemblyName requested, AssemblyName shipped)
        {
            if (requested is null) throw new ArgumentNullException(nameof(requested));
            if (shipped is null) throw new ArgumentNullException(nameof(shipped));
            if (!string.Equals(requested.Name, shipped.Name, StringComparison.OrdinalIgnoreCase)) return false;
            if (!IsNeutral(requested.CultureName) || !IsNeutral(shipped.CultureName)) return false;
            if (!SameToken(requested.GetPublicKeyToken(), shipped.GetPublicKeyToken())) return false;
            // A request without a version (a partial name) is satisfied by what ships.
            return requested.Version is null || (shipped.Version is { } v && v >= requested.Version);
        }

        private static bool IsNeutral(string? culture) => string.IsNullOrEmpty(culture) || string.Equals(culture, "neutral", StringComparison.OrdinalIgnoreCase);

        private static bool SameToken(byte[]? a, byte[]? b)
        {
            // A request that names no token (a partial name) matches; a named token must be the shipped one.
            if (a is null || a.Length == 0) return true;
            if (b is null || a.Length != b.Length) return false;
            for (var i = 0; i < a.Length; i++)
                if (a[i] != b[i]) return false;
            return true;
        }

        /// <summary>
        /// The security protocols to set so that TLS 1.2 (and 1.3 where the runtime knows it) is allowed, keeping every
        /// protocol the host already allows. <c>SystemDefault</c> (0) leaves the choice to the operating system, which
        /// offers what it supports; it is kept as it is.
        /// </summary>
        public static int WithModernTls(int current, int tls12, int? tls13)
        {
            if (current == 0) return 0;
            var result = current | tls12;
            if (tls13 is { } t) result |= t;
            return result;
        }
    }
}
