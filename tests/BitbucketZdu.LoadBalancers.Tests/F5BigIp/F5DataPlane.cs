using BitbucketZdu.LoadBalancers.Tests.Support;

namespace BitbucketZdu.LoadBalancers.Tests.F5BigIp;

/// <summary>
/// <see cref="F5Stub"/>'s virtual server: each request (an HTTP profile with OneConnect, as F5 advises for HTTP pools)
/// goes round-robin to a pool member the stub has enabled and up, and counts as that member's serverside.curConns
/// while in flight, which the stub's stats then report. A user-disabled or user-down member gets no new requests; the
/// ones it has finish.
/// </summary>
public static class F5DataPlane
{
    /// <summary>Makes the stub's pool the given host:port members and starts their virtual server.</summary>
    public static StubDataPlane Start(F5Stub stub, params string[] members) => Start(stub, null, members);

    /// <summary>As <see cref="Start(F5Stub, string[])"/>, the virtual server serving HTTPS with <paramref name="certificate"/> (client-side SSL profile) when given.</summary>
    public static StubDataPlane Start(F5Stub stub, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate, params string[] members)
    {
        lock (stub.Gate)
        {
            stub.LiveConnections = true;
            stub.Members.Clear();
            foreach (var m in members) stub.Members.Add(new F5Stub.Member { Name = m, Address = m[..m.LastIndexOf(':')] });
        }
        var next = 0;
        return new StubDataPlane(() =>
        {
            lock (stub.Gate)
            {
                var eligible = stub.Members.Where(m => m.Session != "user-disabled" && m.State == "up").ToList();
                if (eligible.Count == 0) return null;
                var member = eligible[next++ % eligible.Count];
                member.CurConns++;
                return member.Name;
            }
        }, name =>
        {
            lock (stub.Gate) stub.Members.Single(m => m.Name == name).CurConns--;
        }, certificate);
    }

    /// <summary>
    /// Makes <paramref name="pool"/> (added to the stub if new, e.g. the SSH pool) the given host:port members and starts
    /// its layer-4 virtual server (git over SSH): each connection goes to an enabled, up member and counts as its
    /// serverside.curConns until it closes.
    /// </summary>
    public static StubTcpDataPlane StartTcp(F5Stub stub, string pool, params string[] members)
    {
        List<F5Stub.Member> list;
        lock (stub.Gate)
        {
            stub.LiveConnections = true;
            list = stub.Pools.TryGetValue(pool, out var existing) ? existing : stub.Pools[pool] = new List<F5Stub.Member>();
            list.Clear();
            foreach (var m in members) list.Add(new F5Stub.Member { Name = m, Address = m[..m.LastIndexOf(':')] });
        }
        var next = 0;
        return new StubTcpDataPlane(() =>
        {
            lock (stub.Gate)
            {
                var eligible = list.Where(m => m.Session != "user-disabled" && m.State == "up").ToList();
                if (eligible.Count == 0) return null;
                var member = eligible[next++ % eligible.Count];
                member.CurConns++;
                return member.Name;
            }
        }, name =>
        {
            lock (stub.Gate) list.Single(m => m.Name == name).CurConns--;
        });
    }
}
