namespace BitbucketZdu.TestSupport;

/// <summary>
/// Finds a server binary the tests need. A missing one fails the test with how to install it: a test never passes
/// by skipping its work.
/// </summary>
public static class RequiredTool
{
    public static string Find(string name, params string[] candidates)
    {
        foreach (var c in candidates.Append("/usr/sbin/" + name).Append("/usr/bin/" + name))
            if (File.Exists(c)) return c;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        throw new InvalidOperationException(
            $"'{name}' is not installed. The integration tests drive real servers: run 'bash .ci/install-test-servers.sh' (as root) or install the Debian packages haproxy nginx apache2 openssh-server.");
    }
}
