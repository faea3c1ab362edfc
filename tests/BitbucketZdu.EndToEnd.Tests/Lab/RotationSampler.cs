using System.Globalization;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.EndToEnd.Tests.Lab;

/// <summary>One look at the load balancer: which nodes HAProxy would not send users to, and each node's process id.</summary>
public sealed record RotationSample(long UnixMs, IReadOnlyCollection<string> Out, IReadOnlyDictionary<string, string> Pids);

/// <summary>
/// A separate process (bash, no module, no engine) that asks HAProxy's runtime socket <c>show servers state</c> about
/// every ~100 ms and appends one line per sample to a file, with each node's pid from its bitbucket.pid: what the load
/// balancer really did while runs were killed, independent of anything the killed process journaled. A node is out of
/// rotation when any of its servers is not RUNNING (health check) or has an admin state (drain/maint).
/// </summary>
public sealed class RotationSampler : IAsyncDisposable
{
    private readonly ExternalProcess _process;
    private readonly string _file;

    private RotationSampler(ExternalProcess process, string file)
    {
        _process = process;
        _file = file;
    }

    // bash's /dev/tcp: no helper binary per sample; EPOCHREALTIME: no 'date' fork. The period is the sampling rate, not a wait for anything.
    private const string Script = """
        port=$1; out=$2; shift 2
        while :; do
          line="${EPOCHREALTIME/./}"
          if exec 3<>/dev/tcp/127.0.0.1/$port; then
            printf 'show servers state\n' >&3
            while read -r be_id be_name srv_id srv_name addr op admin rest <&3; do
              case "$be_id" in ''|'#'*|1) continue ;; esac
              line="$line $srv_name:$op:$admin"
            done
            exec 3<&-
          else
            line="$line socket-error"
          fi
          line="$line |"
          for n in "$@"; do
            name=${n%%=*}; home=${n#*=}; pid=-
            if [ -f "$home/bitbucket.pid" ]; then p=$(<"$home/bitbucket.pid"); kill -0 "$p" 2>/dev/null && pid=$p; fi
            line="$line $name=$pid"
          done
          echo "$line" >> "$out"
          sleep 0.1
        done
        """;

    public static async Task<RotationSampler> StartAsync(int adminPort, IEnumerable<SimNode> nodes, string dir)
    {
        var file = Path.Combine(dir, "rotation-samples.txt");
        var script = Path.Combine(dir, "rotation-sampler.sh");
        File.WriteAllText(script, Script);
        var args = new List<string> { script, adminPort.ToString(CultureInfo.InvariantCulture), file };
        args.AddRange(nodes.Select(n => n.Name + "=" + n.Home));
        var process = ExternalProcess.Start("bash", args);
        var sampler = new RotationSampler(process, file);
        await Eventually.UntilAsync(() =>
        {
            if (process.HasExited) throw new InvalidOperationException("the rotation sampler exited: " + process.Output);
            return sampler.Read().Count >= 2;
        }, TimeSpan.FromSeconds(30), "the rotation sampler's first samples");
        return sampler;
    }

    /// <summary>Every sample so far (a line still being written is left out).</summary>
    public IReadOnlyList<RotationSample> Read()
    {
        if (!File.Exists(_file)) return Array.Empty<RotationSample>();
        var samples = new List<RotationSample>();
        var lines = File.ReadAllText(_file).Split('\n');
        foreach (var line in lines.Take(lines.Length - 1))
        {
            var halves = line.Split('|');
            if (halves.Length != 2) continue;
            var left = halves[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (left.Length == 0 || !long.TryParse(left[0], out var us)) continue;
            if (left.Contains("socket-error")) throw new InvalidOperationException("the sampler could not reach HAProxy's runtime socket at " + us);
            var pids = halves[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('='))
                .Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            if (pids.Count == 0) continue;
            var @out = new HashSet<string>();
            foreach (var server in left.Skip(1))
            {
                var f = server.Split(':');
                if (f.Length == 3 && (f[1] != "2" || f[2] != "0")) @out.Add(f[0]);
            }
            samples.Add(new RotationSample(us / 1000, @out, pids));
        }
        return samples;
    }

    public async ValueTask DisposeAsync() => await _process.DisposeAsync();
}
