using System.Net;
using System.Net.Sockets;

namespace BitbucketZdu.TestSupport;

/// <summary>Loopback ports for servers the tests start; never a fixed number, so test projects can run in parallel.</summary>
public static class FreePort
{
    private static readonly object Gate = new();
    private static readonly HashSet<int> Handed = new();

    public static int Next()
    {
        lock (Gate)
        {
            for (var attempt = 0; attempt < 50; attempt++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (Handed.Add(port)) return port;
            }
            throw new InvalidOperationException("No free loopback port found.");
        }
    }
}
