using System.Net;
using System.Reflection;
using System.Runtime.Loader;
using System.Security;
using BitbucketZdu.Loading;

namespace BitbucketZdu.Compat.Tests;

/// <summary>
/// Runs the module's JSON, Polly and HTTP code in a load context that binds like .NET Framework without binding
/// redirects: a reference to an assembly of the module folder binds only to the exact version present, or else only
/// where the module's resolver (<see cref="ModuleInitializer.Choose"/>, the function Windows PowerShell's
/// AssemblyResolve handler calls) accepts the shipped file. Framework assemblies come from the test's runtime.
/// </summary>
public class ExactVersionLoadTests
{
    private sealed class ExactVersionContext(bool withResolver) : AssemblyLoadContext("exact-version", isCollectible: true)
    {
        private readonly Dictionary<string, (AssemblyName Name, string Path)> _shipped = BindingClosureTests.Shipped();

        protected override Assembly? Load(AssemblyName requested)
        {
            if (requested.Name is null || !_shipped.TryGetValue(requested.Name, out var s)) return null;   // the framework's
            if (s.Name.Version == requested.Version) return LoadFromAssemblyPath(s.Path);
            if (withResolver && ModuleInitializer.Choose(_shipped, requested) is { } path) return LoadFromAssemblyPath(path);
            throw new FileLoadException($"Could not load file or assembly '{requested}'. The located assembly's manifest definition ({s.Name}) does not match the assembly reference.");
        }
    }

    private sealed class Answer(string json) : HttpMessageHandler
    {
        public int Requests;
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Requests);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json"),
            });
        }
    }

    private const string Cluster = """{"upgradeModeEnabled":false,"state":"STABLE","originalVersion":null,"nodes":[{"id":"a1","name":"node-1","ipAddress":"10.0.0.1","portNumber":5701,"state":"ACTIVE","version":"8.19.3"}],"links":[{"rel":"self","href":"/"}]}""";

    /// <summary>Parses a cluster answer, creates the real HTTP client and reads the cluster through the Polly pipeline.</summary>
    private static async Task<string> RunCodePaths(AssemblyLoadContext alc)
    {
        var core = alc.LoadFromAssemblyPath(Path.Combine(ModuleFolder.Path_, "BitbucketZdu.Core.dll"));
        Type T(string name) => core.GetType(name, throwOnError: true)!;

        // JSON (System.Text.Json → System.Memory → System.Buffers …)
        var parsed = T("BitbucketZdu.Core.Api.ZduJson").GetMethod("ParseClusterStrict")!.Invoke(null, [Cluster])!;
        Assert.Equal("STABLE", parsed.GetType().GetProperty("StateText")?.GetValue(parsed)?.ToString() ?? "STABLE");

        // HTTP client as Connect-BbCluster creates it (TLS handler and all).
        using var password = new SecureString();
        foreach (var c in "not-a-secret") password.AppendChar(c);
        var credential = T("BitbucketZdu.Core.Api.ZduCredential").GetMethod("Basic")!.Invoke(null, ["admin", password])!;
        var options = Activator.CreateInstance(T("BitbucketZdu.Core.Api.ZduClientOptions"), new Uri("https://bitbucket.example.com/"), credential)!;
        using (var real = (IDisposable)Activator.CreateInstance(T("BitbucketZdu.Core.Api.ZduClient"), options)!) { }

        // Polly: a GET goes through the retry/timeout pipeline, then the JSON parse.
        var handler = new Answer(Cluster);
        using var client = (IDisposable)Activator.CreateInstance(T("BitbucketZdu.Core.Api.ZduClient"), options, handler, true)!;
        var task = (Task)client.GetType().GetMethod("GetClusterAsync")!.Invoke(client, [CancellationToken.None])!;
        await task.WaitAsync(TimeSpan.FromSeconds(60));
        var cluster = task.GetType().GetProperty("Result")!.GetValue(task)!;
        Assert.Equal(1, handler.Requests);
        var nodes = (System.Collections.IEnumerable)cluster.GetType().GetProperty("Nodes")!.GetValue(cluster)!;
        Assert.Single(nodes.Cast<object>());
        return string.Join(", ", alc.Assemblies.Select(a => a.GetName().Name + " " + a.GetName().Version).OrderBy(s => s));
    }

    [Fact]
    public async Task JSON_Polly_and_HTTP_run_when_binding_is_exact_version_plus_the_module_resolver()
    {
        var alc = new ExactVersionContext(withResolver: true);
        try
        {
            var loaded = await RunCodePaths(alc);
            // The dependencies really came from the module folder into this context, not from the test's runtime.
            Assert.Contains("System.Text.Json 8.0.0.0", loaded);
            Assert.Contains("Polly.Core 8.0.0.0", loaded);
            Assert.Contains("System.Buffers 4.0.3.0", loaded);
            Assert.Contains("Microsoft.Bcl.AsyncInterfaces 8.0.0.0", loaded);
        }
        finally { alc.Unload(); }
    }

    [Fact]
    public async Task Without_the_resolver_the_same_code_fails_as_on_Windows_PowerShell_before_it()
    {
        // What today's main does on Windows PowerShell 5.1: import works, the first JSON parse or pipeline fails.
        var alc = new ExactVersionContext(withResolver: false);
        try
        {
            var ex = await Assert.ThrowsAnyAsync<Exception>(() => RunCodePaths(alc));
            var chain = new List<Exception>();
            for (Exception? e = ex; e is not null; e = e.InnerException) chain.Add(e);
            Assert.Contains(chain, e => e is FileLoadException && e.Message.Contains("System.Buffers, Version=4.0.2.0", StringComparison.Ordinal));
        }
        finally { alc.Unload(); }
    }
}
