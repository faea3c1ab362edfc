using System.Net;
using BitbucketZdu.TestSupport;
using WireMock;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;
using WireMock.Util;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

/// <summary>A small real HTTP backend on loopback (a Bitbucket node stand-in): answers its own name after a delay and counts requests.</summary>
public sealed class Backend : IDisposable
{
    private int _requests;
    private int _inFlight;

    static Backend()
    {
        // The backends hold request threads (like a real app server); give the test process enough of them.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
    }

    public Backend(string name, TimeSpan delay)
    {
        Name = name;
        Port = FreePort.Next();
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = new[] { $"http://127.0.0.1:{Port}" } });
        // /slow holds a request open long enough to see a drain wait for it.
        Server.Given(Request.Create().WithPath("/slow").UsingGet()).RespondWith(Response.Create().WithCallback(req =>
        {
            Interlocked.Increment(ref _requests);
            Interlocked.Increment(ref _inFlight);
            try { Thread.Sleep(SlowDelay); } finally { Interlocked.Decrement(ref _inFlight); }
            return Reply();
        }));
        Server.Given(Request.Create().WithPath("/*").UsingAnyMethod()).AtPriority(10).RespondWith(Response.Create().WithCallback(req =>
        {
            Interlocked.Increment(ref _requests);
            Interlocked.Increment(ref _inFlight);
            try { Thread.Sleep(delay); } finally { Interlocked.Decrement(ref _inFlight); }
            return Reply();
        }));
    }

    private ResponseMessage Reply() => new()
    {
        StatusCode = (int)HttpStatusCode.OK,
        BodyData = new BodyData { BodyAsString = Name, DetectedBodyType = BodyType.String },
    };

    public string Name { get; }
    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public WireMockServer Server { get; }
    public int Requests => Volatile.Read(ref _requests);
    public int InFlight => Volatile.Read(ref _inFlight);
    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromSeconds(1.5);

    public void Dispose() => Server.Stop();
}
