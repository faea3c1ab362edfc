using System.Globalization;
using System.Text;

namespace BitbucketZdu.Simulator.Balancer;

/// <summary>
/// The subset of HAProxy's runtime API (management guide §9.3) the module uses, with HAProxy 2.6's exact output
/// formats and error texts: <c>show stat</c>, <c>show servers state</c>, <c>set server &lt;b&gt;/&lt;s&gt; state</c>,
/// <c>enable|disable server</c>, <c>help</c>. Commands may be chained with ';'. Every answer ends with an empty line.
/// The HTTP frontend/backend comes first; a TCP one for git over SSH follows when the balancer has one.
/// </summary>
public sealed class RuntimeApi
{
    // HAProxy 2.6.12's 'show stat' header, captured from the real server so parsers written against it work here.
    internal const string StatHeader = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,";

    private const string ServersStateHeader = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n";
    private static readonly string[] Columns = StatHeader.Substring(2).TrimEnd(',').Split(',');

    /// <summary>A frontend and its backend as HAProxy numbers them (iid in config order: fe 2, bitbucket 3, then git_ssh 4, bitbucket_ssh 5).</summary>
    private sealed record Proxy(string Frontend, int FrontendId, string Backend, int BackendId, string Mode, IReadOnlyList<BackendServer> Servers);

    private readonly BalancerOptions _options;
    private readonly IReadOnlyList<Proxy> _proxies;
    private readonly bool _admin;

    public RuntimeApi(BalancerOptions options, IReadOnlyList<BackendServer> servers, IReadOnlyList<BackendServer>? sshServers = null)
    {
        _options = options;
        var proxies = new List<Proxy> { new(options.FrontendName, 2, options.BackendName, 3, "http", servers) };
        if (sshServers is { Count: > 0 }) proxies.Add(new(options.SshFrontendName, 4, options.SshBackendName, 5, "tcp", sshServers));
        _proxies = proxies;
        _admin = string.Equals(options.AdminLevel, "admin", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Executes one request line (possibly several commands separated by ';') and returns the full answer.</summary>
    public string Execute(string line)
    {
        var sb = new StringBuilder();
        foreach (var command in line.Split(';'))
        {
            var trimmed = command.Trim();
            if (trimmed.Length == 0) continue;
            sb.Append(ExecuteOne(trimmed));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private string ExecuteOne(string command)
    {
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        switch (words[0])
        {
            case "show" when words.Length >= 2 && words[1] == "stat":
                return ShowStat(words.Skip(2).ToArray());
            case "show" when words.Length >= 3 && words[1] == "servers" && words[2] == "state":
                return ShowServersState(words.Length > 3 ? words[3] : null);
            case "set" when words.Length >= 2 && words[1] == "server":
                return SetServer(words.Skip(2).ToArray());
            case "disable" when words.Length >= 2 && words[1] == "server":
                return ChangeState(words.Length > 2 ? words[2] : null, "maint");
            case "enable" when words.Length >= 2 && words[1] == "server":
                return ChangeState(words.Length > 2 ? words[2] : null, "ready");
            case "help":
                return HelpText();
            default:
                return "Unknown command, but maybe one of the following ones is a better match:\n" + HelpText();
        }
    }

    private static string HelpText() =>
        "  disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)\n" +
        "  enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)\n" +
        "  set server                              : change a server's state, weight, address or ssl\n" +
        "  show servers state [<backend>]          : dump volatile server information (all or for a single backend)\n" +
        "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server\n";

    private string SetServer(string[] args)
    {
        if (args.Length < 1 || !args[0].Contains('/')) return "Require 'backend/server'.\n";
        if (args.Length < 3 || args[1] != "state") return "'set server <srv>' only supports 'agent', 'health', 'state', 'weight', 'addr', 'fqdn', 'check-addr', 'check-port', 'ssl' and 'agent-send'.\n";
        return ChangeState(args[0], args[2]);
    }

    private string ChangeState(string? target, string state)
    {
        if (!_admin) return "Permission denied\n";
        if (target is null || !target.Contains('/')) return "Require 'backend/server'.\n";
        var parts = target.Split('/', 2);
        var proxy = _proxies.FirstOrDefault(p => string.Equals(parts[0], p.Backend, StringComparison.Ordinal));
        if (proxy is null) return "No such backend.\n";
        var server = FindServer(proxy.Servers, parts[1]);
        if (server is null) return "No such server.\n";
        switch (state)
        {
            case "ready": server.SetAdminState(ServerAdminState.Ready); return string.Empty;
            case "drain": server.SetAdminState(ServerAdminState.ForcedDrain); return string.Empty;
            case "maint": server.SetAdminState(ServerAdminState.ForcedMaintenance); return string.Empty;
            default: return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n";
        }
    }

    private static BackendServer? FindServer(IReadOnlyList<BackendServer> servers, string nameOrId) =>
        nameOrId.StartsWith('#') && int.TryParse(nameOrId.AsSpan(1), out var id)
            ? servers.FirstOrDefault(s => s.Id == id)
            : servers.FirstOrDefault(s => s.Name == nameOrId);

    private string ShowServersState(string? backend)
    {
        if (backend is not null && _proxies.All(p => p.Backend != backend)) return "Can't find backend.\n";
        var sb = new StringBuilder(ServersStateHeader);
        foreach (var p in _proxies.Where(p => backend is null || p.Backend == backend))
            foreach (var s in p.Servers)
            {
                var opState = s.IsUp ? 2 : 0;
                sb.Append(CultureInfo.InvariantCulture,
                    $"{p.BackendId} {p.Backend} {s.Id} {s.Name} {s.Host} {opState} {(int)s.AdminState} 1 1 {s.SecondsSinceLastChange} 6 3 {s.CheckHealth} 6 0 0 0 - {s.Port} - 0 0 - - 0\n");
            }
        return sb.ToString();
    }

    private string ShowStat(string[] args)
    {
        // show stat [{<iid>|<proxy>} <type> <sid>]: type is a bitmask 1=frontend, 2=backend, 4=server.
        string? proxy = null;
        var types = 7;
        if (args.Length >= 3)
        {
            proxy = args[0] == "-1" ? null : args[0];
            types = int.TryParse(args[1], out var t) ? t : 7;
        }
        var sb = new StringBuilder(StatHeader).Append('\n');
        foreach (var p in _proxies)
            AppendStat(sb, p, proxy, types);
        return sb.ToString();
    }

    private void AppendStat(StringBuilder sb, Proxy p, string? proxy, int types)
    {
        var servers = p.Servers;
        string Sum(Func<BackendServer, int> value) => servers.Sum(value).ToString(CultureInfo.InvariantCulture);
        if ((types & 1) != 0 && (proxy is null || proxy == p.Frontend))
            sb.Append(Row(new() { ["pxname"] = p.Frontend, ["svname"] = "FRONTEND", ["scur"] = Sum(s => s.CurrentSessions), ["stot"] = Sum(s => (int)s.TotalSessions), ["status"] = "OPEN", ["pid"] = "1", ["iid"] = p.FrontendId.ToString(), ["sid"] = "0", ["type"] = "0", ["mode"] = p.Mode }));
        if (proxy is null || proxy == p.Backend)
        {
            if ((types & 4) != 0)
                foreach (var s in servers)
                    sb.Append(Row(new()
                    {
                        ["pxname"] = p.Backend, ["svname"] = s.Name, ["qcur"] = "0", ["qmax"] = "0",
                        ["scur"] = s.CurrentSessions.ToString(), ["smax"] = s.MaxSessions.ToString(), ["stot"] = s.TotalSessions.ToString(),
                        ["status"] = s.Status, ["weight"] = "1", ["act"] = "1", ["bck"] = "0",
                        ["chkfail"] = s.CheckFailures.ToString(), ["chkdown"] = s.DownTransitions.ToString(),
                        ["lastchg"] = s.SecondsSinceLastChange.ToString(), ["pid"] = "1", ["iid"] = p.BackendId.ToString(),
                        ["sid"] = s.Id.ToString(), ["lbtot"] = s.TotalSessions.ToString(), ["type"] = "2",
                        ["check_status"] = s.IsUp ? "L7OK" : "L7STS", ["check_rise"] = _options.Rise.ToString(),
                        ["check_fall"] = _options.Fall.ToString(), ["check_health"] = s.CheckHealth.ToString(),
                        ["addr"] = $"{s.Host}:{s.Port}", ["mode"] = p.Mode,
                    }));
            if ((types & 2) != 0)
                sb.Append(Row(new()
                {
                    ["pxname"] = p.Backend, ["svname"] = "BACKEND", ["qcur"] = "0", ["qmax"] = "0",
                    ["scur"] = Sum(s => s.CurrentSessions), ["stot"] = Sum(s => (int)s.TotalSessions),
                    ["status"] = servers.Any(s => s.AcceptsNewRequests) ? "UP" : "DOWN",
                    ["weight"] = servers.Count(s => s.AcceptsNewRequests).ToString(), ["pid"] = "1", ["iid"] = p.BackendId.ToString(),
                    ["sid"] = "0", ["type"] = "1", ["mode"] = p.Mode, ["algo"] = "roundrobin",
                }));
        }
    }

    private static string Row(Dictionary<string, string> values) =>
        string.Join(",", Columns.Select(c => values.TryGetValue(c, out var v) ? v : string.Empty)) + ",\n";
}
