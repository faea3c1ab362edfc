using System.Net;
using System.Net.Sockets;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>Loopback ports for servers the tests and the demo start (the PowerShell side loads this type from bbsim.dll: tools/BbsimCluster.psm1); never a fixed number, so test projects can run in parallel.</summary>
/// <remarks>
/// Taken below the kernel's ephemeral range: a port the OS hands out for bind(0) is also the pool every outgoing
/// connection draws its local port from, so under load (git clones, web GETs through a balancer) a client socket could
/// take it between this call and the server's bind. A CI run lost a simulated node that way (it never turned ACTIVE).
/// Each process starts at a random place in the range, so test processes running side by side rarely meet.
/// </remarks>
public static class FreePort
{
    private const int RangeLow = 20000;
    private const int RangeHigh = 32000;   // below Linux's default ephemeral start (32768) and Windows/macOS's (49152)
    private static readonly object Gate = new();
    private static readonly HashSet<int> Handed = new();
    private static readonly bool UseRange = EphemeralLow() > RangeHigh;
    private static int _next = RangeLow + Random.Shared.Next(RangeHigh - RangeLow);

    public static int Next()
    {
        lock (Gate)
        {
            for (var attempt = 0; attempt < 500; attempt++)
            {
                int port;
                if (UseRange)
                {
                    port = _next;
                    _next = _next >= RangeHigh ? RangeLow : _next + 1;
                    if (Handed.Contains(port) || !CanBind(port)) continue;
                }
                else
                {
                    var listener = new TcpListener(IPAddress.Loopback, 0);
                    listener.Start();
                    port = ((IPEndPoint)listener.LocalEndpoint).Port;
                    listener.Stop();
                }
                if (Handed.Add(port)) return port;
            }
            throw new InvalidOperationException("No free loopback port found.");
        }
    }

    /// <summary>Whether a listener can bind 127.0.0.1:<paramref name="port"/> now.</summary>
    public static bool CanBind(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The first port of the kernel's ephemeral range (Linux); elsewhere the IANA default.</summary>
    private static int EphemeralLow()
    {
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(text[0]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 49152;
        }
    }
}
