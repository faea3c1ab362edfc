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
        "  An HTTP load balancer on 127.0.0.1 whose runtime API (TCP, admin port) speaks HAProxy's commands:\n" +
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
        var level = "admin";
        var servers = new List<BalancerServerOptions>();
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
                case "--server":
                    var spec = Next();
                    var eq = spec.IndexOf('=');
                    var colon = spec.LastIndexOf(':');
                    if (eq <= 0 || colon <= eq + 1) throw new FormatException($"'{spec}' is not <name>=<host>:<port>.");
                    servers.Add(new BalancerServerOptions(spec[..eq], spec[(eq + 1)..colon], Port(spec[(colon + 1)..])));
                    break;
                default: throw new FormatException($"unknown option '{args[i]}'.");
            }
        }
        if (servers.Count == 0) throw new FormatException("at least one --server is required.");
        if (level is not ("admin" or "operator")) throw new FormatException("--admin-level is admin or operator.");
        return new BalancerOptions
        {
            ListenPort = listen, AdminPort = admin, BackendName = backend, Servers = servers, AdminLevel = level,
            CheckInterval = TimeSpan.FromMilliseconds(checkMs), CheckTimeout = TimeSpan.FromMilliseconds(Math.Max(100, checkMs * 4 / 5)),
            Rise = rise, Fall = fall,
        };
    }

    private static int Port(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 65535
            ? p : throw new FormatException($"'{text}' is not a port number.");
}
