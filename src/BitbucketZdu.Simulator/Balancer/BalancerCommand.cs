using System.Globalization;

namespace BitbucketZdu.Simulator.Balancer;

/// <summary>
/// <c>bbsim balancer --listen PORT --admin-port PORT [--backend NAME] --server NAME=HOST:PORT ...
/// [--check-interval-ms N] [--admin-level admin|operator]</c>: runs the loopback balancer until Ctrl+C or SIGTERM.
/// </summary>
public static class BalancerCommand
{
    public const string Usage =
        "bbsim balancer --listen <port> --admin-port <port> [--backend <name>] --server <name>=<host>:<port> [--server ...]\n" +
        "               [--check-interval-ms <n>] [--rise <n>] [--fall <n>] [--admin-level admin|operator]\n" +
        "               [--check-path /status] [--tls-cert <pem> --tls-key <pem>] [--server-ca <pem>]\n" +
        "               [--ssh-listen <port> [--ssh-backend <name>] --ssh-server <name>=<host>:<port> [--ssh-server ...]]\n" +
        "  An HTTP load balancer on 127.0.0.1 (and a TCP one for git over SSH) whose runtime API (TCP, admin port) speaks HAProxy's commands:\n" +
        "  show stat | show servers state | set server <backend>/<server> state ready|drain|maint";

    public static async Task<int> RunAsync(string[] args)
    {
        BalancerOptions options;
        try
        {
            options = Parse(args);
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine("bbsim balancer: " + ex.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        await using var lb = await LoopbackBalancer.StartAsync(options);
        Console.WriteLine($"balancer listening on http://127.0.0.1:{lb.Port}/ (backend {options.BackendName}: {string.Join(", ", options.Servers.Select(s => $"{s.Name}={s.Host}:{s.Port}"))})");
        if (lb.SshPort is { } sshPort)
            Console.WriteLine($"git over SSH on tcp 127.0.0.1:{sshPort} (backend {options.SshBackendName}: {string.Join(", ", options.SshServers.Select(s => $"{s.Name}={s.Host}:{s.Port}"))})");
        Console.WriteLine($"runtime API on tcp 127.0.0.1:{lb.AdminPort} (level {options.AdminLevel})");
        var done = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; done.TrySetResult(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => done.TrySetResult();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; done.TrySetResult(); });
        await done.Task;
        return 0;
    }

    public static BalancerOptions Parse(string[] args)
    {
        int listen = 0, admin = 0, checkMs = 500, rise = 2, fall = 2;
        var backend = "bitbucket";
        var sshBackend = "bitbucket_ssh";
        var level = "admin";
        var checkPath = "/status";
        string? cert = null, key = null, serverCa = null;
        int? sshListen = null;
        var servers = new List<BalancerServerOptions>();
        var sshServers = new List<BalancerServerOptions>();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--listen": listen = Port(Next()); break;
                case "--admin-port": admin = Port(Next()); break;
                case "--backend": backend = Next(); break;
                case "--check-interval-ms": checkMs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rise": rise = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--fall": fall = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--admin-level": level = Next(); break;
                case "--check-path": checkPath = Next(); break;
                case "--tls-cert": cert = Next(); break;
                case "--tls-key": key = Next(); break;
                case "--server-ca": serverCa = Next(); break;
                case "--ssh-listen": sshListen = Port(Next()); break;
                case "--ssh-backend": sshBackend = Next(); break;
                case "--server": servers.Add(Server(Next())); break;
                case "--ssh-server": sshServers.Add(Server(Next())); break;
                default: throw new FormatException($"unknown option '{args[i]}'.");
            }
        }
        if (servers.Count == 0) throw new FormatException("at least one --server is required.");
        if (level is not ("admin" or "operator")) throw new FormatException("--admin-level is admin or operator.");
        if ((cert is null) != (key is null)) throw new FormatException("give --tls-cert and --tls-key together.");
        if (!checkPath.StartsWith('/')) throw new FormatException("--check-path starts with '/'.");
        if ((sshListen is null) != (sshServers.Count == 0)) throw new FormatException("give --ssh-listen and at least one --ssh-server together.");
        return new BalancerOptions
        {
            ListenPort = listen, AdminPort = admin, BackendName = backend, Servers = servers, AdminLevel = level,
            CheckInterval = TimeSpan.FromMilliseconds(checkMs), CheckTimeout = TimeSpan.FromMilliseconds(Math.Max(100, checkMs * 4 / 5)),
            Rise = rise, Fall = fall, CheckPath = checkPath, CertificateFile = cert, KeyFile = key, ServerCaFile = serverCa,
            SshListenPort = sshListen, SshBackendName = sshBackend, SshServers = sshServers,
        };
    }

    private static BalancerServerOptions Server(string spec)
    {
        var eq = spec.IndexOf('=');
        var colon = spec.LastIndexOf(':');
        if (eq <= 0 || colon <= eq + 1) throw new FormatException($"'{spec}' is not <name>=<host>:<port>.");
        return new BalancerServerOptions(spec[..eq], spec[(eq + 1)..colon], Port(spec[(colon + 1)..]));
    }

    private static int Port(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 65535
            ? p : throw new FormatException($"'{text}' is not a port number.");
}
