using System.Net.Sockets;

namespace BitbucketZdu.LoadBalancers.Tests.Support;

public static class Loopback
{
    /// <summary>True when something accepts connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static bool CanConnect(int port)
    {
        try { using var c = new TcpClient(); c.Connect("127.0.0.1", port); return true; }
        catch (SocketException) { return false; }
    }
}
