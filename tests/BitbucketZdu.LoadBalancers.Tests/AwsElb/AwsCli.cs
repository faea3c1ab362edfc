namespace BitbucketZdu.LoadBalancers.Tests.AwsElb;

/// <summary>
/// The AWS CLI v2 the tests drive: Debian's /usr/bin/aws (package awscli, installed by .ci/install-test-servers.sh),
/// found by path because a pip-installed v1 may come first on PATH (BBZDU_TEST_AWS_CLI names another). Each test runs
/// it through a small wrapper script (the provider's CliPath) that keeps it away from this machine's own AWS setup —
/// empty config and credential files, instance metadata off — adds the test's environment, then execs the real CLI.
/// </summary>
public static class AwsCli
{
    private static readonly Lazy<string> Found = new(() =>
    {
        var path = Environment.GetEnvironmentVariable("BBZDU_TEST_AWS_CLI") ?? "/usr/bin/aws";
        return File.Exists(path) ? path
            : throw new InvalidOperationException($"The AWS CLI v2 is not at {path}: run .ci/install-test-servers.sh (Debian package awscli) or set BBZDU_TEST_AWS_CLI.");
    });

    public static string Binary => Found.Value;

    /// <summary>The default wrapper: the credential the provider passes (its environment) is the only one the CLI can find.</summary>
    public static string Isolated { get; } = Wrapper();

    /// <summary>
    /// A wrapper script; <paramref name="environment"/> overrides the isolation (e.g. AWS_CONFIG_FILE). With
    /// <paramref name="clearKeys"/> the access-key variables this test process may have are removed too, so only the
    /// chain under test (a profile, instance metadata) can supply credentials.
    /// </summary>
    public static string Wrapper(IReadOnlyDictionary<string, string>? environment = null, bool clearKeys = false, string? before = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bbzdu-awscli-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["AWS_CONFIG_FILE"] = Path.Combine(dir, "config"),
            ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(dir, "credentials"),
            ["AWS_EC2_METADATA_DISABLED"] = "true",
        };
        foreach (var kv in environment ?? new Dictionary<string, string>()) env[kv.Key] = kv.Value;
        var unset = "AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN"
                    + (clearKeys ? " AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN" : "");
        var path = Path.Combine(dir, "aws");
        File.WriteAllText(path, "#!/bin/sh\nunset " + unset + "\n"
            + string.Concat(env.Select(kv => $"export {kv.Key}='{kv.Value.Replace("'", "'\\''")}'\n"))
            + (before is null ? "" : before + "\n")
            + $"exec '{Binary}' \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>A fake CLI that only prints a version line (for the version check).</summary>
    public static string Fake(string versionLine)
    {
        var path = Path.Combine(Path.GetTempPath(), "bbzdu-fakeaws-" + Guid.NewGuid().ToString("N")[..12]);
        File.WriteAllText(path, $"#!/bin/sh\necho '{versionLine}'\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
