using System.Security;

namespace BitbucketZdu.TestSupport;

/// <summary>
/// Secrets used throughout the tests. They are distinctive so that a scan of any output (streams, error records,
/// logs, journals, reports) can prove that no credential leaked.
/// </summary>
public static class Canary
{
    public const string UserName = "canary-admin";
    public const string Password = "Canary-P4ss-7f3e9d2b";
    public const string Token = "Canary-T0ken-51c8a0e6";

    public static IReadOnlyList<string> All { get; } = new[] { Password, Token };

    public static SecureString Secure(string value)
    {
        var s = new SecureString();
        foreach (var c in value) s.AppendChar(c);
        s.MakeReadOnly();
        return s;
    }

    /// <summary>Fails when <paramref name="text"/> contains a canary secret (or its Basic-auth base64 form).</summary>
    public static void AssertAbsent(string? text, string where)
    {
        if (string.IsNullOrEmpty(text)) return;
        foreach (var secret in All.Concat(All.Select(s => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(UserName + ":" + s)))))
            if (text.Contains(secret, StringComparison.Ordinal))
                throw new Xunit.Sdk.XunitException($"A canary secret leaked into {where}.");
    }
}
