using System.Collections.Concurrent;
using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>A shell that stands for a remote load-balancer host: runs locally, records every call, reports another host name.</summary>
public sealed class RecordingShell : INodeShell
{
    private readonly LocalShell _inner = new();

    public RecordingShell(string hostName) => HostName = hostName;

    public string HostName { get; }
    public ShellPlatform Platform => _inner.Platform;
    public ConcurrentQueue<string> Calls { get; } = new();

    public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default, IReadOnlyDictionary<string, string>? environment = null)
    {
        Calls.Enqueue("run " + command);
        return _inner.RunAsync(command, timeout, cancellationToken, environment);
    }

    public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) { Calls.Enqueue("exists " + path); return _inner.PathExistsAsync(path, cancellationToken); }
    public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) { Calls.Enqueue("read " + path); return _inner.ReadTextAsync(path, cancellationToken); }
    public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) { Calls.Enqueue("write " + path); return _inner.WriteTextAsync(path, content, cancellationToken); }
    public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default) { Calls.Enqueue("copy " + remotePath); return _inner.CopyFileToAsync(localPath, remotePath, cancellationToken); }
    public void Dispose() => _inner.Dispose();
}
