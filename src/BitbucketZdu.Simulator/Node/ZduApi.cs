using System.Text;
using System.Text.Json;
using BitbucketZdu.Simulator.Cluster;
using Microsoft.AspNetCore.Http;

namespace BitbucketZdu.Simulator.Node;

/// <summary>
/// /rest/zdu as the real plugin serves it: sysadmin Basic auth (403 for bearer tokens), XSRF check on POSTs,
/// guarded transitions answering 409 with an empty body, hypermedia links offered exactly when allowed.
/// </summary>
public sealed class ZduApi(NodeRuntime node)
{
    private const string JsonType = "application/json;charset=UTF-8";

    public async Task HandleAsync(HttpContext ctx)
    {
        var faults = node.Faults;
        if (faults.ApiLatencyMs is > 0) await Task.Delay(faults.ApiLatencyMs.Value, ctx.RequestAborted);
        if (node.TakeApiError())
        {
            await WriteErrorsAsync(ctx, faults.ApiErrorStatus ?? 503, "Simulated server error (bbsim fault).", null);
            return;
        }
        if (!await Auth.RequireSysadminAsync(ctx, node.Config, faults.AdminPassword, node.Log)) return;
        if (node.State is NodeStates.Starting or NodeStates.Error)
        {
            await Auth.WriteStatusAsync(ctx, 503, node.State == NodeStates.Starting ? "Bitbucket is starting up." : "Bitbucket failed to start.");
            return;
        }

        var path = ctx.Request.Path.Value!["/rest/zdu".Length..].TrimEnd('/');
        var method = ctx.Request.Method;
        if (HttpMethods.IsPost(method) && !await Auth.CheckXsrfAsync(ctx)) return;
        switch (method, path)
        {
            case ("GET", "/cluster"):
                await WriteJsonAsync(ctx, 200, ClusterJson(Read()));
                return;
            case ("GET", "/state"):
                await WriteStateAsync(ctx);
                return;
            case ("GET", _) when path.StartsWith("/nodes/", StringComparison.Ordinal):
                var id = Uri.UnescapeDataString(path["/nodes/".Length..]);
                var n = Read().Nodes.FirstOrDefault(x => x.Id == id);
                if (n is null) ctx.Response.StatusCode = 404;
                else await WriteJsonAsync(ctx, 200, NodeJson(n));
                return;
            case ("POST", "/start"):
                await TransitionAsync(ctx, "start", v => v.CanStart, (doc, v) =>
                {
                    doc.UpgradeModeEnabled = true;
                    doc.OriginalVersion = v.Nodes.FirstOrDefault(x => x.State != NodeStates.Offline && x.Version is not null)?.Version ?? doc.Version;
                    doc.Snapshot = v.Nodes.Where(x => x.State != NodeStates.Offline)
                        .Select(x => new SnapshotNode { Id = x.Id, Name = x.Name, IpAddress = x.IpAddress, PortNumber = x.PortNumber }).ToList();
                });
                return;
            case ("POST", "/cancel"):
                await TransitionAsync(ctx, "cancel", v => v.CanCancel, (doc, _) => Disable(doc));
                return;
            case ("POST", "/approve"):
                node.ReloadFaults();
                await TransitionAsync(ctx, "finalize", v => v.CanApprove, (doc, v) =>
                {
                    doc.Version = v.Nodes.First(x => x.State != NodeStates.Offline).Version;
                    Disable(doc);
                    doc.FinalizationFailed = node.Faults.UpgradeTasksFail == true;
                    RunFinalizationTasks(doc);
                }, afterEffect: node.Faults.ApproveFailsAfterEffect == true ? "approve took effect; simulated fault approveFailsAfterEffect" : null);
                return;
            case ("POST", "/retryUpgrade"):
                node.ReloadFaults();
                // The retried tasks succeed (after running for upgradeTasksDurationMs, if set).
                await TransitionAsync(ctx, "retry", v => v.CanRetry, (doc, _) =>
                {
                    doc.FinalizationFailed = false;
                    RunFinalizationTasks(doc);
                });
                return;
            case ("GET" or "POST", "/cluster" or "/state" or "/start" or "/cancel" or "/approve" or "/retryUpgrade"):
                ctx.Response.StatusCode = 405;
                return;
            default:
                ctx.Response.StatusCode = 404;
                return;
        }
    }

    private static void Disable(ClusterDoc doc)
    {
        doc.UpgradeModeEnabled = false;
        doc.OriginalVersion = null;
        doc.Snapshot = new List<SnapshotNode>();
    }

    /// <summary>Finalization tasks run on the answering node for upgradeTasksDurationMs (none: they end at once).</summary>
    private void RunFinalizationTasks(ClusterDoc doc)
    {
        var ms = node.Faults.UpgradeTasksDurationMs ?? 0;
        doc.FinalizationEndsMs = ms > 0 ? NodeRuntime.NowMs + ms : 0;
        doc.FinalizationNodeKey = ms > 0 ? node.Key : null;
    }

    public ClusterView Read()
    {
        var view = ClusterLogic.Build(node.Store.ReadCluster(), node.Store.ReadNodes(), NodeRuntime.NowMs, node.Config.HeartbeatTimeout);
        if (node.Faults.NamesNotConfigured != true) return view;
        // The plugin's builder default for a node without a configured name; the sort (name, then address) then orders by address.
        var renamed = view.Nodes.Select(n => n with { Name = NotConfigured })
            .OrderBy(n => n.IpAddress, StringComparer.Ordinal).ThenBy(n => n.PortNumber).ToList();
        return view with { Nodes = renamed };
    }

    public const string NotConfigured = "Not configured";

    private async Task TransitionAsync(HttpContext ctx, string name, Func<ClusterView, bool> guard, Action<ClusterDoc, ClusterView> change,
        string? afterEffect = null)
    {
        using (node.Store.Lock())
        {
            var view = Read();
            if (!guard(view))
            {
                // InvalidStateTransitionException → 409 with an empty body.
                node.Log($"WARN Server error in REST: Invalid ZDU transition: {name} (cluster is {view.State})");
                ctx.Response.StatusCode = 409;
                return;
            }
            change(view.Doc, view);
            node.Store.WriteCluster(view.Doc);
            node.Log($"Rolling upgrade: {name} accepted in state {view.State}.");
        }
        if (afterEffect is not null)
        {
            node.Log("WARN Server error in REST: " + afterEffect);
            await WriteErrorsAsync(ctx, 500, "An internal error occurred (bbsim fault approveFailsAfterEffect).", "java.lang.RuntimeException");
            return;
        }
        await WriteJsonAsync(ctx, 200, ClusterJson(Read()));
    }

    private async Task WriteStateAsync(HttpContext ctx)
    {
        var view = Read();
        var local = view.Nodes.FirstOrDefault(n => n.Key == node.Key && n.Id == node.Id);
        if (local is null)
        {
            await WriteErrorsAsync(ctx, 500, "failed to find local node", "java.lang.RuntimeException");
            return;
        }
        await WriteJsonAsync(ctx, 200, new Dictionary<string, object?> { ["state"] = view.State, ["buildInfo"] = NodeJson(local) });
    }

    public Dictionary<string, object?> ClusterJson(ClusterView v)
    {
        var links = new List<object> { Link("self", "/") };
        if (v.CanStart) links.Add(Link("start", "/start"));
        if (v.CanCancel) links.Add(Link("cancel", "/cancel"));
        if (v.CanApprove) links.Add(Link("approve", "/approve"));
        if (v.CanRetry) links.Add(Link("retryUpgrade", "/retryUpgrade"));
        return new Dictionary<string, object?>
        {
            ["upgradeModeEnabled"] = v.Doc.UpgradeModeEnabled,
            ["hasFinalizationTasks"] = v.Doc.FinalizationFailed || v.State == ClusterStates.RunningUpgradeTasks,
            ["state"] = v.State,
            ["originalVersion"] = v.Doc.UpgradeModeEnabled ? v.Doc.OriginalVersion : null,
            ["nodes"] = v.Nodes.Select(NodeJson).ToList(),
            ["links"] = links,
        };
    }

    public Dictionary<string, object?> NodeJson(NodeView n)
    {
        var json = NodeJsonWithPort(n);
        // The plugin's NodeInfoDTO has portNumber @JsonIgnore (zdu-api.md §12): fault omitPortNumber writes it that way.
        if (node.Faults.OmitPortNumber == true) json.Remove("portNumber");
        return json;
    }

    private Dictionary<string, object?> NodeJsonWithPort(NodeView n) => new()
    {
        ["id"] = n.Id,
        ["name"] = n.Name,
        ["ipAddress"] = n.IpAddress,
        ["portNumber"] = n.PortNumber,
        ["state"] = n.State,
        ["tasksTotal"] = n.TasksTotal,
        ["activeUserCount"] = n.ActiveUserCount,
        ["buildNumber"] = n.BuildNumber,
        ["version"] = n.Version,
        ["local"] = n.Key == node.Key && n.State != NodeStates.Offline,
        ["finalization"] = null,
        ["links"] = new[] { Link("self", "/nodes/" + n.Id) },
    };

    private static Dictionary<string, string> Link(string rel, string href) => new() { ["rel"] = rel, ["href"] = href };

    public static async Task WriteJsonAsync(HttpContext ctx, int status, object body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = JsonType;
        await ctx.Response.WriteAsync(JsonSerializer.Serialize(body), Encoding.UTF8);
    }

    /// <summary>Bitbucket's error envelope: {"errors":[{"context":null,"message":...,"exceptionName":...}]}.</summary>
    public static Task WriteErrorsAsync(HttpContext ctx, int status, string message, string? exceptionName) =>
        WriteJsonAsync(ctx, status, new Dictionary<string, object?>
        {
            ["errors"] = new[] { new Dictionary<string, object?> { ["context"] = null, ["message"] = message, ["exceptionName"] = exceptionName } },
        });
}
