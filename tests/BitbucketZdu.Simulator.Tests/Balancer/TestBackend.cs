using System.Net;
using System.Text;

namespace BitbucketZdu.Simulator.Tests.Balancer;

/// <summary>A minimal real HTTP backend on loopback: /status for health checks, anything else answers its name after a delay.</summary>
internal sealed class TestBackend : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private int _served;
    private int _inFlight;

    public TestBackend(string name, TimeSpan latency)
    {
        Name = name;
        Latency = latency;
        Port = FreePort.Next();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public string Name { get; }
    public int Port { get; }
    public TimeSpan Latency { get; set; }
    public volatile bool Healthy = true;
    public int Served => Volatile.Read(ref _served);
    public int InFlight => Volatile.Read(ref _inFlight);

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        try
        {
            if (ctx.Request.Url!.AbsolutePath == "/status")
            {
                ctx.Response.StatusCode = Healthy ? 200 : 503;
                await Write(ctx, Healthy ? "{\"state\":\"RUNNING\"}" : "{\"state\":\"STARTING\"}");
                return;
            }
            Interlocked.Increment(ref _inFlight);
            try
            {
                await Task.Delay(Latency);
                Interlocked.Increment(ref _served);
                await Write(ctx, Name);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    private static async Task Write(HttpListenerContext ctx, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
    }
}
