using System.Globalization;
using System.Net.Sockets;
using System.Text;
using BitbucketZdu.Simulator.Launcher;

namespace BitbucketZdu.Simulator.Sampler;

/// <summary>
/// bbsim sample: what users see, from outside the tool. Reads the load balancer's runtime API
/// (<c>show servers state</c>) and each node's <c>/status</c> every interval, each source on its own loop so a slow
/// one does not stall the others, and writes one line per change: <c>time-utc TAB lb|status TAB name TAB value</c>.
/// lb values: UP (running and ready: in rotation), DOWN, MAINT, DRAIN; status values: the /status state or
/// "unreachable". Runs until killed or --duration passes (so a forgotten sampler ends by itself).
/// </summary>
public static class SampleCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var admin = a.Required("admin");
        var backend = a.Optional("backend") ?? "bitbucket";
        var output = a.Required("output");
        var interval = TimeSpan.FromMilliseconds(a.Int("interval-ms", 100));
        var duration = TimeSpan.FromSeconds(a.Int("duration-s", 1800));
        var statusUrls = (a.Optional("status") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Split('=', 2)).Select(p => p.Length == 2 ? (Name: p[0], Url: p[1].TrimEnd('/') + "/status")
                : throw new UsageException($"'{string.Join("=", p)}' in --status is not name=url.")).ToList();
        var caFile = a.Optional("ca");
        a.RejectUnknown();
        var colon = admin.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(admin[(colon + 1)..], out var port)) throw new UsageException($"--admin '{admin}' is not host:port.");
        var host = admin[..colon];

        using var writer = new StreamWriter(output, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        var gate = new object();
        void Write(string kind, string name, string value)
        {
            var line = $"{DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)}\t{kind}\t{name}\t{value}";
            lock (gate) writer.WriteLine(line);
        }
        using var stop = new CancellationTokenSource(duration);
        var loops = new List<Task> { SampleBalancerAsync(host, port, backend, interval, Write, stop.Token) };
        // Nodes served over HTTPS with the cluster's internal CA (--ca): that CA only, the way the module trusts it.
        using var handler = new SocketsHttpHandler();
        if (caFile is not null) handler.SslOptions = Tls.SimCertificates.TrustOnly(caFile);
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        loops.AddRange(statusUrls.Select(s => SampleStatusAsync(http, s.Name, s.Url, interval, Write, stop.Token)));
        Write("sampler", "-", "started");
        try { await Task.WhenAll(loops); }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        return 0;
    }

    private static async Task SampleBalancerAsync(string host, int port, string backend, TimeSpan interval, Action<string, string, string> write, CancellationToken ct)
    {
        var last = new Dictionary<string, string>(StringComparer.Ordinal);
        while (!ct.IsCancellationRequested)
        {
            var next = DateTime.UtcNow + interval;
            try
            {
                foreach (var (name, value) in ParseServersState(await QueryAsync(host, port, $"show servers state {backend}", ct)))
                {
                    if (last.TryGetValue(name, out var was) && was == value) continue;
                    last[name] = value;
                    write("lb", name, value);
                }
            }
            // A reply slower than the query's own 2 s timeout (a loaded machine) is a missed sample, not the end of sampling.
            catch (Exception ex) when (ex is SocketException or IOException or TimeoutException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                if (!last.TryGetValue("", out var was) || was != "unreachable") { last[""] = "unreachable"; write("lb", "-", "unreachable: " + ex.Message); }
            }
            var wait = next - DateTime.UtcNow;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
        }
    }

    /// <summary>srv_op_state 2 (running) and srv_admin_state without maintenance/drain bits: in rotation.</summary>
    internal static IEnumerable<(string Name, string Value)> ParseServersState(string reply)
    {
        var lines = reply.Replace("\r\n", "\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines.FirstOrDefault(l => l.StartsWith('#'))?.TrimStart('#', ' ').Split(' ');
        if (header is null) yield break;
        int name = Array.IndexOf(header, "srv_name"), op = Array.IndexOf(header, "srv_op_state"), adm = Array.IndexOf(header, "srv_admin_state");
        foreach (var line in lines.Where(l => !l.StartsWith('#')))
        {
            var f = line.Split(' ');
            if (f.Length <= Math.Max(name, Math.Max(op, adm))) continue;
            var admin = int.Parse(f[adm], CultureInfo.InvariantCulture);
            var value = (admin & (0x01 | 0x02 | 0x04 | 0x20 | 0x40)) != 0 ? "MAINT"
                : (admin & (0x08 | 0x10)) != 0 ? "DRAIN"
                : f[op] == "2" ? "UP" : "DOWN";
            yield return (f[name], value);
        }
    }

    private static async Task<string> QueryAsync(string host, int port, string command, CancellationToken ct)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        await client.ConnectAsync(host, port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\n"), timeout.Token);
        client.Client.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private static async Task SampleStatusAsync(HttpClient http, string name, string url, TimeSpan interval, Action<string, string, string> write, CancellationToken ct)
    {
        string? last = null;
        while (!ct.IsCancellationRequested)
        {
            var next = DateTime.UtcNow + interval;
            string value;
            try
            {
                using var response = await http.GetAsync(url, ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                var m = System.Text.RegularExpressions.Regex.Match(body, "\"state\"\\s*:\\s*\"([A-Z_]+)\"");
                value = m.Success ? m.Groups[1].Value : $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                value = "unreachable";
            }
            if (value != last) { last = value; write("status", name, value); }
            var wait = next - DateTime.UtcNow;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
        }
    }
}
