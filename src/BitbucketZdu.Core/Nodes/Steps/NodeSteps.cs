using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>
    /// The per-node upgrade steps over any <see cref="INodeShell"/>: discover, stop, pre-stage, configure, start and
    /// roll back. Each step is idempotent (a re-run finds finished work and moves on), never touches the old install
    /// dir, and returns what it changed. Commands come from <see cref="NodeOps"/> for the shell's platform.
    /// </summary>
    public sealed partial class NodeSteps
    {
        private static readonly Regex ArchiveName = new Regex(@"^atlassian-bitbucket-(?<v>\d+\.\d+\.\d+)\.(?<kind>tar\.gz|tgz|zip)$", RegexOptions.IgnoreCase);
        private static int _activityIds = ProgressActivities.NodeStepsBase;

        private readonly INodeShell _shell;
        private readonly NodeOps _ops;
        private readonly IOperationHost _host;
        private readonly int _activityId = Interlocked.Increment(ref _activityIds);
        /// <summary>Files read ahead in one round trip (configure), kept current by this class's own writes.</summary>
        private Dictionary<string, string?>? _cache;

        private readonly Poller _poller;

        /// <param name="poller">The clock the step waits run on; real time by default (the engine passes its own).</param>
        public NodeSteps(INodeShell shell, NodeStepOptions? options = null, IOperationHost? host = null, Poller? poller = null)
        {
            _poller = poller ?? Poller.System;
            _shell = shell ?? throw new ArgumentNullException(nameof(shell));
            Options = options ?? new NodeStepOptions();
            _ops = NodeOps.For(shell, Options);
            _host = host ?? NullOperationHost.Instance;
        }

        public NodeStepOptions Options { get; }
        private string Host => _shell.HostName;
        private string Ext => _ops.ScriptExtension;

        // Each step is in its own file beside this one (NodeSteps.<Step>.cs); here: state and the helpers they share.

        private string BinRel(string script) => (_shell.Platform == ShellPlatform.Posix ? "bin/" : "bin\\") + script + Ext;
        private string BinFile(string installDir, string script) => _ops.Combine(installDir, "bin", script + Ext);

        private string RequireHome(NodeInstallation installation) =>
            installation.HomeDir ?? throw new BbException("NodeHomeMissing", BbErrorCategory.ObjectNotFound,
                $"BITBUCKET_HOME of {installation.InstallDir} on {Host} is unknown: it is neither in the environment nor in bin/set-bitbucket-home{Ext}.", Host);

        private async Task<string?> VersionOfAsync(string installDir, CancellationToken ct, bool jarOnly = false) =>
            VersionIn(await _ops.ListAsync(_ops.Combine(installDir, "app", "WEB-INF", "lib"), ct).ConfigureAwait(false)) ?? (jarOnly ? null : VersionOfDirName(installDir));

        /// <summary>The version of the bitbucket-api-X.Y.Z.jar among <paramref name="libFiles"/>.</summary>
        private static string? VersionIn(IEnumerable<string> libFiles)
        {
            foreach (var f in libFiles)
            {
                var m = Regex.Match(f.Trim(), @"^bitbucket-api-(?<v>\d+\.\d+\.\d+)(?:[.-].*)?\.jar$");
                if (m.Success) return m.Groups["v"].Value;
            }
            return null;
        }

        private static string? VersionOfDirName(string installDir)
        {
            var dir = Regex.Match(installDir, @"atlassian-bitbucket-(?<v>\d+\.\d+\.\d+)[\\/]*$");
            return dir.Success ? dir.Groups["v"].Value : null;
        }

        private async Task<NodeMarker> ReadMarkerAsync(string installDir, CancellationToken ct) =>
            NodeMarker.Parse(await ReadOrNullAsync(_ops.Combine(installDir, NodeMarker.InstallMarkerName), ct).ConfigureAwait(false));

        private async Task<string?> ReadOrNullAsync(string path, CancellationToken ct) =>
            _cache is not null && _cache.TryGetValue(path, out var cached) ? cached : (await _ops.ReadFilesAsync(new[] { path }, ct).ConfigureAwait(false))[0];

        private async Task<int?> ReadPidAsync(string home, CancellationToken ct) =>
            ParsePid(await ReadOrNullAsync(_ops.Combine(home, Options.PidFile), ct).ConfigureAwait(false));

        private static int? ParsePid(string? text) =>
            text is not null && int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : (int?)null;

        internal static string? InstallDirIn(string serviceText)
        {
            // A Windows service (procrun): ImagePath names <install dir>\bin\<service exe>, quoted when the path has
            // spaces (C:\Program Files\Atlassian\Bitbucket\<version>).
            var w = Regex.Match(serviceText, @"\\ImagePath=""?(?<dir>[A-Za-z]:\\[^""\r\n]*?)\\bin\\[^\\""\r\n]+\.exe", RegexOptions.IgnoreCase);
            if (w.Success) return w.Groups["dir"].Value;
            // A quoted Windows path may hold spaces; an unquoted one (and any POSIX path) ends at white space.
            var q = Regex.Match(serviceText, @"""(?<dir>[A-Za-z]:\\[^""\r\n]*?)\\bin\\(?:start|stop)-bitbucket\.bat", RegexOptions.IgnoreCase);
            if (q.Success) return q.Groups["dir"].Value;
            var m = Regex.Match(serviceText, @"(?<dir>(?:/|[A-Za-z]:\\)[^\s""';=]*?)[/\\]bin[/\\](?:start|stop)-bitbucket\.(?:sh|bat)");
            if (m.Success) return m.Groups["dir"].Value;
            m = Regex.Match(serviceText, @"cd\s+[""']?(?<dir>/[^\s""';]+?)/bin[""']?(?=[\s;&|]|$)", RegexOptions.Multiline);
            return m.Success ? m.Groups["dir"].Value : null;
        }

        internal static IReadOnlyList<string> StartArgumentsIn(string serviceText)
        {
            var m = Regex.Match(serviceText, @"start-bitbucket\.(?:sh|bat)[ \t]+(?<args>--[^\r\n""';&|]*)");
            return m.Success ? m.Groups["args"].Value.Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        }

        private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

        private BbException Failed(string doing, ShellResult r) =>
            new BbException("NodeCommandFailed", BbErrorCategory.InvalidResult, $"Could not {doing} on {Host}: {NodeOps.Tail(r.StandardError + r.StandardOutput, 400)}", Host);

        private void Report(string status, int percent, bool completed = false) =>
            _host.Progress(new OperationProgress(_activityId, $"Bitbucket node {Host}", status) { PercentComplete = percent, Completed = completed });

        /// <summary>
        /// A step's wait, on the engine's poller (<see cref="Timing.Poller"/>, virtual time in tests): from 100 ms,
        /// backing off by 1.5× to <paramref name="maxInterval"/>, progress on each pause. What <paramref name="done"/>
        /// throws (a hopeless state) goes up at once.
        /// </summary>
        private async Task<bool> PollAsync(Func<CancellationToken, Task<bool>> done, TimeSpan timeout, string activity, TimeSpan maxInterval, CancellationToken ct)
        {
            var result = await _poller.PollAsync(done, d => d,
                new PollOptions<bool>(timeout, new PollSchedule(TimeSpan.FromMilliseconds(100), maxInterval, 1.5))
                {
                    OnWaiting = (elapsed, left) => _host.Progress(new OperationProgress(_activityId, $"Bitbucket node {Host}", activity)
                    {
                        SecondsRemaining = (int)left.TotalSeconds,
                        PercentComplete = (int)Math.Min(99, 100 * elapsed.TotalSeconds / Math.Max(0.001, timeout.TotalSeconds)),
                    }),
                }, ct).ConfigureAwait(false);
            Report(activity, 100, completed: true);
            return result.Reached;
        }
    }
}
