using System.Collections.Concurrent;
using BitbucketZdu.Core.Hosting;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>An operation host that records what the engine said and can answer -WhatIf or react to progress.</summary>
public sealed class TestHost : IOperationHost
{
    public ConcurrentQueue<string> Messages { get; } = new();
    public ConcurrentQueue<string> Warnings { get; } = new();
    public ConcurrentQueue<OperationProgress> ProgressRecords { get; } = new();
    public bool Allow { get; set; } = true;
    public Action<OperationProgress>? OnProgress { get; set; }
    public List<(string Target, string Action)> Asked { get; } = new();

    public void Verbose(string message) => Messages.Enqueue(message);
    public void Debug(string message) => Messages.Enqueue(message);
    public void Warning(string message) { Warnings.Enqueue(message); Messages.Enqueue("WARNING: " + message); }

    public void Progress(OperationProgress progress)
    {
        ProgressRecords.Enqueue(progress);
        OnProgress?.Invoke(progress);
    }

    public bool ShouldProcess(string target, string action)
    {
        lock (Asked) Asked.Add((target, action));
        return Allow;
    }

    public string AllText => string.Join("\n", Messages);
}

/// <summary>A per-fixture temp folder, removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix)
    {
        // Short: a Unix socket path must stay under ~104 bytes.
        Path = System.IO.Path.Combine("/tmp", prefix + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
