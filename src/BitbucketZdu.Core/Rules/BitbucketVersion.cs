using System;
using System.Globalization;
using System.Text.RegularExpressions;

namespace BitbucketZdu.Core.Rules
{
    /// <summary>
    /// A Bitbucket release number (major.minor.bugfix). A rolling upgrade may only go to a higher bug-fix release of
    /// the same major.minor line (7.9.0 → 7.9.4), which <see cref="IsBugfixUpgradeTo"/> decides.
    /// </summary>
    public sealed class BitbucketVersion : IComparable<BitbucketVersion>, IEquatable<BitbucketVersion>
    {
        private static readonly Regex Pattern = new Regex(@"^\s*(\d{1,4})\.(\d{1,4})\.(\d{1,6})(?:[-.][0-9A-Za-z.-]+)?\s*$", RegexOptions.CultureInvariant);

        public BitbucketVersion(int major, int minor, int bugfix)
        {
            if (major < 0 || minor < 0 || bugfix < 0) throw new ArgumentOutOfRangeException(nameof(major), "Version parts cannot be negative.");
            Major = major;
            Minor = minor;
            Bugfix = bugfix;
        }

        public int Major { get; }
        public int Minor { get; }
        public int Bugfix { get; }

        /// <summary>The feature line, e.g. "8.19".</summary>
        public string Line => Major.ToString(CultureInfo.InvariantCulture) + "." + Minor.ToString(CultureInfo.InvariantCulture);

        public static bool TryParse(string? text, out BitbucketVersion? version)
        {
            version = null;
            if (text is null) return false;
            var m = Pattern.Match(text);
            if (!m.Success) return false;
            version = new BitbucketVersion(
                int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
            return true;
        }

        public static BitbucketVersion Parse(string text) =>
            TryParse(text, out var v) ? v! : throw new FormatException($"'{text}' is not a Bitbucket version; expected major.minor.bugfix such as 8.19.3.");

        /// <summary>True when <paramref name="target"/> is a higher bug-fix release of this version's line.</summary>
        public bool IsBugfixUpgradeTo(BitbucketVersion target) =>
            target.Major == Major && target.Minor == Minor && target.Bugfix > Bugfix;

        /// <summary>Why an upgrade from this version to <paramref name="target"/> is refused, or null when it is allowed.</summary>
        public string? WhyNotUpgradableTo(BitbucketVersion target)
        {
            if (target.Major != Major || target.Minor != Minor)
                return $"{target} is not on the {Line} line of {this}: a rolling upgrade can only move to a higher bug-fix release (for example {Line}.{Bugfix + 1}). Feature and major upgrades need a full outage.";
            if (target.Bugfix == Bugfix)
                return $"The cluster already runs {this}.";
            if (target.Bugfix < Bugfix)
                return $"{target} is lower than {this}: a rolling upgrade cannot downgrade.";
            return null;
        }

        public int CompareTo(BitbucketVersion? other)
        {
            if (other is null) return 1;
            var c = Major.CompareTo(other.Major);
            if (c != 0) return c;
            c = Minor.CompareTo(other.Minor);
            return c != 0 ? c : Bugfix.CompareTo(other.Bugfix);
        }

        public bool Equals(BitbucketVersion? other) => other is not null && CompareTo(other) == 0;
        public override bool Equals(object? obj) => obj is BitbucketVersion v && Equals(v);
        public override int GetHashCode() => (Major * 1000 + Minor) * 100000 + Bugfix;
        public override string ToString() => string.Format(CultureInfo.InvariantCulture, "{0}.{1}.{2}", Major, Minor, Bugfix);
    }
}
