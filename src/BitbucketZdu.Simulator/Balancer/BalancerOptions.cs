namespace BitbucketZdu.Simulator.Balancer;

/// <summary>One server line of the balancer's backend (HAProxy: <c>server node-1 127.0.0.1:7991 check</c>).</summary>
public sealed record BalancerServerOptions(string Name, string Host, int Port);

/// <summary>
/// The simulator's loopback load balancer: an HTTP reverse proxy with one backend (and, optionally, a TCP frontend and
/// backend for git over SSH) whose runtime API speaks the subset of HAProxy's CLI that the module uses, so the demo
/// runs on machines without HAProxy.
/// </summary>
public sealed class BalancerOptions
{
    public int ListenPort { get; init; }
    public int AdminPort { get; init; }
    /// <summary>"admin" or "operator": the level of the runtime API socket (operator refuses changes, like HAProxy).</summary>
    public string AdminLevel { get; init; } = "admin";
    public string FrontendName { get; init; } = "fe";
    public string BackendName { get; init; } = "bitbucket";
    public IReadOnlyList<BalancerServerOptions> Servers { get; init; } = Array.Empty<BalancerServerOptions>();
    public string CheckPath { get; init; } = "/status";
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan CheckTimeout { get; init; } = TimeSpan.FromMilliseconds(400);
    /// <summary>Consecutive good checks before a DOWN server is UP again (HAProxy's rise).</summary>
    public int Rise { get; init; } = 2;
    /// <summary>Consecutive failed checks before an UP server is DOWN (HAProxy's fall).</summary>
    public int Fall { get; init; } = 2;

    /// <summary>PEM certificate and key of the HTTP front: it serves HTTPS with them (HAProxy's <c>bind ... ssl crt</c>). Both or neither.</summary>
    public string? CertificateFile { get; init; }
    public string? KeyFile { get; init; }
    /// <summary>A CA (PEM): the servers are reached over HTTPS and their certificates verified against it (HAProxy's <c>ssl verify required ca-file</c>).</summary>
    public string? ServerCaFile { get; init; }

    /// <summary>
    /// The TCP port of the git-over-SSH frontend (HAProxy's <c>mode tcp</c>); null = none. Connections go round-robin
    /// to <see cref="SshServers"/>, bytes copied both ways until either side closes.
    /// </summary>
    public int? SshListenPort { get; init; }
    public string SshFrontendName { get; init; } = "git_ssh";
    public string SshBackendName { get; init; } = "bitbucket_ssh";
    /// <summary>
    /// The SSH backend's servers. One named like an HTTP server is checked on that server's HTTP <see cref="CheckPath"/>
    /// (HAProxy's <c>check port &lt;http&gt;</c> with <c>option httpchk</c>), so a stopping node leaves both backends; any
    /// other by a TCP connect.
    /// </summary>
    public IReadOnlyList<BalancerServerOptions> SshServers { get; init; } = Array.Empty<BalancerServerOptions>();
}
