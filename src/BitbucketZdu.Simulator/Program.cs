using BitbucketZdu.Simulator.Balancer;
using BitbucketZdu.Simulator.Cluster;
using BitbucketZdu.Simulator.Dist;
using BitbucketZdu.Simulator.Launcher;
using BitbucketZdu.Simulator.Node;
using BitbucketZdu.Simulator.Sampler;

namespace BitbucketZdu.Simulator;

/// <summary>bbsim: the simulated Bitbucket Data Center cluster. Commands are described in docs/simulator.md.</summary>
public static class Program
{
    private const string Usage = """
        bbsim - a simulated Bitbucket Data Center cluster (docs/simulator.md)

          dotnet bbsim.dll dist --version X.Y.Z --output <dir> [--format tar.gz|zip|both]
          dotnet bbsim.dll cluster --nodes 3 --version 8.19.3 --root <dir> [--base-port 7990 | --ports p1,p2,..] [--user admin]
                                   [--password <pw>] [--grace 30s] [--start-delay 2s] [--heartbeat 1s]
                                   [--heartbeat-timeout 5s] [--timeout 90s] [--stable-ids] [--detach] [--context-path /bitbucket]
                                   [--ssh-ports p1,p2,..] [--git-duration 2s] [--tls-cert <pem> --tls-key <pem>]
                                   [--properties <file>]   (extra bitbucket.properties lines for every node)
          dotnet bbsim.dll stop --root <dir>
          dotnet bbsim.dll certs --output <dir> [--name "bbsim Demo CA"]   (an internal CA + a localhost certificate it signed, PEM)
          dotnet bbsim.dll balancer --listen <port> --admin-port <port> --server <name>=<host>:<port> ...   (HAProxy-compatible runtime API)
          dotnet bbsim.dll sample --admin <host>:<port> --output <file> [--backend bitbucket] [--status name=url,...]
                                  [--interval-ms 100] [--duration-s 1800]   (what users see: balancer + /status changes)
          dotnet bbsim.dll service --install <dir> --home <dir> --output <dir> [--user <name>]
          dotnet bbsim.dll stop-node --home <dir>
          dotnet bbsim.dll node --install <dir> --home <dir> [--no-search] [--pid-file <file>]   (run by bin/start-bitbucket.sh)
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            if (args[0] == "balancer")
                return await BalancerCommand.RunAsync(args[1..]);
            var a = new CliArgs(args.Skip(1), "no-search", "detach", "stable-ids");
            switch (args[0])
            {
                case "dist":
                {
                    var version = ParseVersion(a.Required("version"));
                    var output = a.Required("output");
                    var format = a.Optional("format") ?? "both";
                    a.RejectUnknown();
                    foreach (var f in DistBuilder.Build(version, output, format, RuntimeLocation.Current()))
                        Console.WriteLine(f);
                    return 0;
                }
                case "node":
                {
                    var home = a.Optional("home") ?? Environment.GetEnvironmentVariable("BITBUCKET_HOME")
                        ?? throw new UsageException("Give --home or set BITBUCKET_HOME.");
                    var install = a.Required("install");
                    var noSearch = a.Flag("no-search");
                    var pidFile = a.Optional("pid-file");
                    a.RejectUnknown();
                    return await NodeHost.RunAsync(NodeConfig.Load(home, install, noSearch), pidFile);
                }
                case "cluster":
                {
                    var o = new ClusterOptions
                    {
                        Nodes = a.Int("nodes", 3),
                        Version = ParseVersion(a.Optional("version") ?? "8.19.3"),
                        Root = a.Required("root"),
                        BasePort = a.Int("base-port", 7990),
                        Ports = a.Optional("ports")?.Split(',').Select(p => int.TryParse(p, out var n) ? n : throw new UsageException($"'{p}' in --ports is not a port number.")).ToList(),
                        User = a.Optional("user") ?? "admin",
                        Password = a.Optional("password"),
                        Grace = a.Optional("grace") ?? "30s",
                        StartDelay = a.Optional("start-delay") ?? "2s",
                        Heartbeat = a.Optional("heartbeat") ?? "1s",
                        HeartbeatTimeout = a.Optional("heartbeat-timeout") ?? "5s",
                        StableIds = a.Flag("stable-ids"),
                        Detach = a.Flag("detach"),
                        ContextPath = a.Optional("context-path") ?? "",
                        SshPorts = a.Optional("ssh-ports")?.Split(',').Select(p => int.TryParse(p, out var n) ? n : throw new UsageException($"'{p}' in --ssh-ports is not a port number.")).ToList(),
                        GitDuration = a.Optional("git-duration") ?? "2s",
                        TlsCertificate = a.Optional("tls-cert"),
                        TlsKey = a.Optional("tls-key"),
                        Timeout = a.Optional("timeout") is { } timeout ? NodeConfig.Duration(timeout) : TimeSpan.FromSeconds(90),
                        PropertiesFile = a.Optional("properties"),
                    };
                    a.RejectUnknown();
                    return await ClusterLauncher.RunAsync(o, Console.Out);
                }
                case "sample":
                    return await SampleCommand.RunAsync(a);
                case "certs":
                {
                    var output = a.Required("output");
                    var name = a.Optional("name") ?? "bbsim Demo CA";
                    a.RejectUnknown();
                    var (ca, files) = Tls.SimCertificates.WriteSet(Path.GetFullPath(output), name);
                    ca.Dispose();
                    foreach (var f in new[] { files.CaFile, files.CertificateFile, files.KeyFile, files.CombinedFile })
                        Console.WriteLine(f);
                    return 0;
                }
                case "stop":
                {
                    var root = a.Required("root");
                    a.RejectUnknown();
                    return await ClusterLauncher.StopAsync(root, Console.Out);
                }
                case "stop-node":
                {
                    var home = a.Required("home");
                    a.RejectUnknown();
                    Console.WriteLine(await ProcessControl.StopNodeAsync(Path.GetFullPath(home), TimeSpan.FromSeconds(40), killAfterWait: false));
                    return 0;
                }
                case "service":
                {
                    var path = ServiceScript.Write(a.Required("install"), a.Required("home"), a.Required("output"), a.Optional("user"));
                    a.RejectUnknown();
                    Console.WriteLine(path);
                    return 0;
                }
                default:
                    throw new UsageException($"Unknown command '{args[0]}'.");
            }
        }
        catch (UsageException ex)
        {
            Console.Error.WriteLine("bbsim: " + ex.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine("bbsim: " + ex.Message);
            return 1;
        }
    }

    private static SimVersion ParseVersion(string text) =>
        SimVersion.TryParse(text, out var v) ? v : throw new UsageException($"'{text}' is not a version such as 8.19.3.");
}
