using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>The simulator's "bbsim dist": each version's archives are built once per test run and shared.</summary>
public static class Bbsim
{
    private static readonly string Cache = Directory.CreateTempSubdirectory("bbzdu-bbsim-dist-").FullName;
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "bbsim.dll");

    public static async Task<string> DistAsync(string version, string format)
    {
        var file = Path.Combine(Cache, $"atlassian-bitbucket-{version}.{format}");
        await Gate.WaitAsync();
        try
        {
            if (File.Exists(file)) return file;
            var (code, output) = await ExternalProcess.RunAsync("dotnet", new[] { Dll, "dist", "--version", version, "--output", Cache, "--format", format }, TimeSpan.FromSeconds(60));
            if (code != 0 || !File.Exists(file)) throw new InvalidOperationException("bbsim dist failed: " + output);
            return file;
        }
        finally
        {
            Gate.Release();
        }
    }
}
