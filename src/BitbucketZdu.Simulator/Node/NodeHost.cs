using System.Net;
using System.Text.Json;
using BitbucketZdu.Simulator.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BitbucketZdu.Simulator.Node;

/// <summary>
/// One simulated Bitbucket node: the HTTP (or HTTPS) server on 127.0.0.1:server.port with /status, the user endpoints,
/// /rest/zdu and /scm under server.context-path, the simulator's admin endpoints at /bbsim, the git-over-SSH port
/// (plugin.ssh.port); graceful shutdown on SIGTERM within graceful.shutdown.timeout.
/// </summary>
public static class NodeHost
{
    public static async Task<int> RunAsync(NodeConfig config, string? pidFile = null)
    {
        var node = new NodeRuntime(config);
        var shutdownToken = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var api = new ZduApi(node);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = Array.Empty<string>(), ContentRootPath = config.Home });
        builder.Logging.ClearProviders();
        // Kestrel and hosting warnings go to the log; the node writes its own INFO lines.
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = config.GracePeriod;
            // HTTP requests and SSH clones in flight share one grace period, as in Bitbucket.
            o.ServicesStopConcurrently = true;
        });
        var git = config.SshPort > 0 ? new GitSshServer(node) : null;
        if (git is not null) builder.Services.AddHostedService(_ => git);
        var certificate = config.TlsCertificateFile is null ? null
            : System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(config.TlsCertificateFile,
                config.TlsKeyFile ?? throw new InvalidOperationException("bbsim.ssl.certificate is set without bbsim.ssl.key."));
        builder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, config.Port, listen =>
            {
                listen.Use(next => async connection =>
                {
                    if (node.Faults.RefuseConnections == true)
                    {
                        connection.Abort(new ConnectionAbortedException("bbsim fault refuseConnections"));
                        return;
                    }
                    await next(connection);
                });
                // TLS after the fault check, so refuseConnections still drops the connection before any handshake.
                listen.UseHttpsIf(certificate);
            });
        });

        var app = builder.Build();
        app.Run(ctx =>
        {
            if (node.Faults.RefuseConnections == true)
            {
                // A keep-alive connection accepted before the fault: drop it too.
                ctx.Abort();
                return Task.CompletedTask;
            }
            return ctx.Request.Path == "/bbsim/admin/shutdown" ? Shutdown(ctx, app.Lifetime, shutdownToken) : Route(ctx, node, api);
        });

        var lifetime = app.Lifetime;
        using var stop = new CancellationTokenSource();
        lifetime.ApplicationStopping.Register(() =>
        {
            stop.Cancel();
            node.OnStopping();
        });
        lifetime.ApplicationStopped.Register(node.OnStopped);

        try
        {
            await app.StartAsync();
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine($"Cannot listen on 127.0.0.1:{config.Port}: {ex.Message}. Is another node using server.port={config.Port}?");
            return 1;
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            Console.Error.WriteLine($"Cannot listen on 127.0.0.1:{config.SshPort}: {ex.Message}. Is another node using plugin.ssh.port={config.SshPort}?");
            return 1;
        }
        // For stop-bitbucket.sh (how long to wait) and stop-node (Windows: the shutdown endpoint).
        File.WriteAllText(Path.Combine(config.Home, "bbsim-grace-seconds"), ((int)Math.Ceiling(config.GracePeriod.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.WriteAllText(Path.Combine(config.Home, "bbsim-port"), config.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.WriteAllText(Path.Combine(config.Home, "bbsim-shutdown.token"), shutdownToken);
        if (pidFile is not null) File.WriteAllText(pidFile, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        node.Announce();
        var heartbeat = node.HeartbeatLoopAsync(lifetime.ApplicationStopped);
        _ = Task.Run(async () =>
        {
            try { await node.RunStartupAsync(stop.Token); }
            catch (OperationCanceledException) { }
            catch (Exception ex) { node.Log("Start-up failed: " + ex); }
        });
        await app.WaitForShutdownAsync();
        await heartbeat;
        // Disposing the host releases ConsoleLifetime's exit block at once (otherwise exit waits for the shutdown timeout).
        await app.DisposeAsync();
        return 0;
    }

    /// <summary>POST /bbsim/admin/shutdown with the token from $BITBUCKET_HOME/bbsim-shutdown.token: a graceful stop (stop-node, Windows).</summary>
    private static Task Shutdown(HttpContext ctx, IHostApplicationLifetime lifetime, string token)
    {
        var given = ctx.Request.Headers["X-Bbsim-Shutdown-Token"].ToString();
        if (!HttpMethods.IsPost(ctx.Request.Method) || !System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(given), System.Text.Encoding.UTF8.GetBytes(token)))
        {
            ctx.Response.StatusCode = 403;
            return Task.CompletedTask;
        }
        ctx.Response.StatusCode = 202;
        ctx.Response.OnCompleted(() => { lifetime.StopApplication(); return Task.CompletedTask; });
        return Task.CompletedTask;
    }

    /// <summary>The path under server.context-path ("/status" for "/bitbucket/status"); the simulator's own /bbsim endpoints stay at the root; null = outside the context path.</summary>
    public static string? UnderContextPath(string path, string contextPath)
    {
        if (contextPath.Length == 0 || path.StartsWith("/bbsim/", StringComparison.Ordinal)) return path;
        if (path == contextPath) return "/";
        return path.StartsWith(contextPath + "/", StringComparison.Ordinal) ? path[contextPath.Length..] : null;
    }

    private static async Task Route(HttpContext ctx, NodeRuntime node, ZduApi api)
    {
        var path = UnderContextPath(ctx.Request.Path.Value ?? "/", node.Config.ContextPath);
        if (path is null)
        {
            ctx.Response.StatusCode = 404;
            return;
        }
        if (path != ctx.Request.Path.Value)
        {
            // As a servlet container does: the handlers below see the path within the context path.
            ctx.Request.PathBase = node.Config.ContextPath;
            ctx.Request.Path = path;
        }
        if (path.StartsWith("/scm/", StringComparison.Ordinal))
        {
            await GitHttpAsync(ctx, node);
            return;
        }
        if (path == "/status")
        {
            var (state, code) = node.State switch
            {
                NodeStates.Starting => ("STARTING", 503),
                // Fault statusState: FIRST_RUN (setup wizard) or MAINTENANCE, both 200 per Atlassian's KB.
                NodeStates.Active when !string.IsNullOrWhiteSpace(node.Faults.StatusState) => (node.Faults.StatusState!.Trim(), 200),
                NodeStates.Active => ("RUNNING", 200),
                NodeStates.Error => ("ERROR", 500),
                _ => ("STOPPING", 503),
            };
            await ZduApi.WriteJsonAsync(ctx, code, new Dictionary<string, string> { ["state"] = state });
            return;
        }
        if (path.StartsWith("/rest/zdu/", StringComparison.Ordinal) || path == "/rest/zdu")
        {
            await api.HandleAsync(ctx);
            return;
        }
        if (path == "/bbsim/node")
        {
            await ZduApi.WriteJsonAsync(ctx, 200, NodeInfo(node));
            return;
        }
        if (path.StartsWith("/bbsim/admin/faults/", StringComparison.Ordinal))
        {
            await FaultsAsync(ctx, node, path["/bbsim/admin/faults/".Length..]);
            return;
        }
        if (path is "/" or "/rest/api/1.0/application-properties" or "/rest/api/latest/application-properties")
        {
            await UserRequestAsync(ctx, node, path);
            return;
        }
        ctx.Response.StatusCode = 404;
    }

    /// <summary>
    /// The user-facing endpoints for load generators: "GET /" answers the node's name and version; the real
    /// application-properties resource answers the version. Latency: bbsim.user.latency, fault userLatencyMs, or
    /// ?delayMs=N. Each request counts in tasksTotal while in flight; its user in activeUserCount.
    /// </summary>
    private static async Task UserRequestAsync(HttpContext ctx, NodeRuntime node, string path)
    {
        if (node.State is not (NodeStates.Active or NodeStates.Terminating or NodeStates.Draining))
        {
            ctx.Response.StatusCode = 503;
            ctx.Response.ContentType = "text/html;charset=UTF-8";
            await ctx.Response.WriteAsync($"<html><body>Bitbucket is {node.State.ToLowerInvariant()}.</body></html>");
            return;
        }
        var user = Auth.BasicUser(ctx) ?? ctx.Request.Headers["X-Bbsim-User"].FirstOrDefault() ?? ctx.Request.Query["user"].FirstOrDefault();
        using var _ = node.TrackRequest(user);
        var latency = int.TryParse(ctx.Request.Query["delayMs"], out var d) ? TimeSpan.FromMilliseconds(d)
            : node.Faults.UserLatencyMs is int f ? TimeSpan.FromMilliseconds(f) : node.Config.UserLatency;
        if (latency > TimeSpan.Zero) await Task.Delay(latency, ctx.RequestAborted);
        ctx.Response.Headers["X-Bbsim-Node"] = node.Config.NodeName;
        if (path == "/")
            await ZduApi.WriteJsonAsync(ctx, 200, new Dictionary<string, object?>
            {
                ["node"] = node.Config.NodeName, ["version"] = node.Config.Version.ToString(), ["id"] = node.Id, ["state"] = node.State,
            });
        else
            await ZduApi.WriteJsonAsync(ctx, 200, new Dictionary<string, object?>
            {
                ["version"] = node.Config.Version.ToString(), ["buildNumber"] = node.Config.Version.BuildNumber,
                ["buildDate"] = "1700000000000", ["displayName"] = "Bitbucket",
            });
    }

    /// <summary>
    /// Git over HTTP (GET /scm/&lt;project&gt;/&lt;repo&gt;.git/...): a clone's response, streamed for bbsim.git.duration
    /// (or ?durationMs=N), a pack line every 100 ms, ending "done &lt;node&gt;". Counted in flight, so a graceful stop lets it finish within the grace period.
    /// </summary>
    private static async Task GitHttpAsync(HttpContext ctx, NodeRuntime node)
    {
        if (node.State is not (NodeStates.Active or NodeStates.Terminating or NodeStates.Draining))
        {
            ctx.Response.StatusCode = 503;
            return;
        }
        using var _ = node.TrackRequest(Auth.BasicUser(ctx));
        var duration = int.TryParse(ctx.Request.Query["durationMs"], out var ms) ? TimeSpan.FromMilliseconds(ms) : node.Config.GitDuration;
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/x-git-upload-pack-result";
        ctx.Response.Headers["X-Bbsim-Node"] = node.Config.NodeName;
        await GitStream.PumpAsync(duration, async line =>
        {
            await ctx.Response.WriteAsync(line, ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }, ctx.RequestAborted);
        await ctx.Response.WriteAsync($"done {node.Config.NodeName}\n", ctx.RequestAborted);
    }

    private static Dictionary<string, object?> NodeInfo(NodeRuntime node) => new()
    {
        ["id"] = node.Id,
        ["name"] = node.Config.NodeName,
        ["version"] = node.Config.Version.ToString(),
        ["state"] = node.State,
        ["error"] = node.Error,
        ["inFlight"] = node.InFlight,
        ["pid"] = Environment.ProcessId,
        ["port"] = node.Config.Port,
        ["sshPort"] = node.Config.SshPort,
        ["contextPath"] = node.Config.ContextPath,
        ["scheme"] = node.Config.Scheme,
        ["installDir"] = node.Config.InstallDir,
        ["home"] = node.Config.Home,
        ["sharedHome"] = node.Config.SharedHome,
        ["noSearch"] = node.Config.NoSearch,
        ["jvm"] = new Dictionary<string, string?>
        {
            ["minimumMemory"] = Environment.GetEnvironmentVariable("JVM_MINIMUM_MEMORY"),
            ["maximumMemory"] = Environment.GetEnvironmentVariable("JVM_MAXIMUM_MEMORY"),
            ["supportRecommendedArgs"] = Environment.GetEnvironmentVariable("JVM_SUPPORT_RECOMMENDED_ARGS"),
        },
        ["user"] = Environment.UserName,
    };

    /// <summary>GET/PUT/DELETE /bbsim/admin/faults/{cluster|node-name} (sysadmin): the same files as in docs/simulator.md.</summary>
    private static async Task FaultsAsync(HttpContext ctx, NodeRuntime node, string target)
    {
        if (!await Auth.RequireSysadminAsync(ctx, node.Config, node.Faults.AdminPassword, node.Log)) return;
        try
        {
            node.Store.FaultFile(target);
        }
        catch (ArgumentException ex)
        {
            await ZduApi.WriteErrorsAsync(ctx, 400, ex.Message, null);
            return;
        }
        switch (ctx.Request.Method)
        {
            case "GET":
                await ZduApi.WriteJsonAsync(ctx, 200, (object?)node.Store.ReadFaults(target) ?? new FaultSettings());
                return;
            case "PUT":
                FaultSettings? faults;
                try
                {
                    var options = new JsonSerializerOptions(SharedStore.Json) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };
                    faults = await JsonSerializer.DeserializeAsync<FaultSettings>(ctx.Request.Body, options, ctx.RequestAborted);
                }
                catch (JsonException ex)
                {
                    await ZduApi.WriteErrorsAsync(ctx, 400, "Invalid fault settings: " + ex.Message, null);
                    return;
                }
                node.Store.WriteFaults(target, faults ?? new FaultSettings());
                node.ReloadFaults();
                var logged = JsonSerializer.Serialize(faults, SharedStore.Json);
                if (faults?.AdminPassword is not null) logged = logged.Replace(JsonSerializer.Serialize(faults.AdminPassword), "\"***\"");
                node.Log($"Faults for '{target}' set: {logged.ReplaceLineEndings(" ")}");
                await ZduApi.WriteJsonAsync(ctx, 200, faults ?? new FaultSettings());
                return;
            case "DELETE":
                node.Store.DeleteFaults(target);
                node.ReloadFaults();
                ctx.Response.StatusCode = 204;
                return;
            default:
                ctx.Response.StatusCode = 405;
                return;
        }
    }
}

internal static class ListenOptionsExtensions
{
    public static void UseHttpsIf(this Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate)
    {
        if (certificate is not null) listen.UseHttps(certificate);
    }
}
