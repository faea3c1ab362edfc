using System.Net;
using System.Net.Sockets;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Simulator.Tests;

/// <summary>The ports the tests' servers get must not be ones an outgoing connection could already hold.</summary>
public sealed class FreePortTests
{
    [Fact]
    public void Ports_are_below_the_kernel_ephemeral_range_distinct_and_bindable()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        if (!File.Exists(range)) return;   // Linux only: elsewhere the range is the IANA default, above ours
        var low = int.Parse(File.ReadAllText(range).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0]);
        var ports = Enumerable.Range(0, 50).Select(_ => FreePort.Next()).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
        if (low > 32000) Assert.All(ports, p => Assert.True(p < low, $"port {p} is in the ephemeral range starting at {low}"));
        var listener = new TcpListener(IPAddress.Loopback, ports[^1]);
        listener.Start();
        listener.Stop();
    }
}
