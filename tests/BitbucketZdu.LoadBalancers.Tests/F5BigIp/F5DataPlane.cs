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
    public static StubDataPlane Start(F5Stub stub, params string[] members)
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
        });
    }
}
