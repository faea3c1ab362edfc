using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.LoadBalancers.Nginx
{
    /// <summary>
    /// NGINX open source: no runtime API, so a member is taken out by marking its <c>server</c> line <c>down</c> in the
    /// upstream block (backup kept, file written atomically), <c>nginx -t</c>, a graceful reload, and waiting until the
    /// old worker processes have finished their requests (that is the drain). All file and process work goes through
    /// an <see cref="INodeShell"/>, so the same code drives nginx on this machine or on the load-balancer host remotely.
    /// Draining and maintenance are the same state here (<c>down</c>), reported as Maintenance.
    /// </summary>
    public sealed class NginxLoadBalancer : LoadBalancerBase
    {
        private readonly INodeShell _shell;
        private readonly bool _ownsShell;
        private string? _pidFile;

        public NginxLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            _ownsShell = description.Shell is null;
            _shell = description.Shell ?? new LocalShell();
            var path = description.Endpoints[0];
            ConfigPath = path.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? new Uri(path).LocalPath : path;
            _pidFile = description.NginxPidFile;
        }

        /// <summary>The file holding the upstream block.</summary>
        public string ConfigPath { get; }

        /// <summary>The backup written before each change.</summary>
        public string BackupPath => ConfigPath + ".bbzdu.bak";

        private string Where => $"{_shell.HostName}:{ConfigPath}";

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            var text = await ReadConfigAsync(cancellationToken).ConfigureAwait(false);
            return ToMembers(text);
        }

        private IReadOnlyList<LoadBalancerMember> ToMembers(string text)
        {
            var servers = NginxUpstreamConfig.Parse(text, Description.Backend)
                ?? throw LoadBalancerErrors.BackendNotFound(Description, Where, string.Join(", ", NginxUpstreamConfig.UpstreamNames(text)));
            return servers.Select(s => new LoadBalancerMember(s.Address, s.Address, Description.Backend,
                s.Down ? MemberAdminState.Maintenance : MemberAdminState.Ready, MemberHealth.Unknown)
            {
                Status = (s.Down ? "down" : "up") + (s.Backup ? " backup" : "") + $" (line {s.Line})",
                LoadBalancer = Description.DisplayName,
            }).ToList();
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            if (state == MemberAdminState.Unknown) throw new ArgumentOutOfRangeException(nameof(state));
            var down = state != MemberAdminState.Ready;
            var expected = down ? MemberAdminState.Maintenance : MemberAdminState.Ready;
            var original = await ReadConfigAsync(cancellationToken).ConfigureAwait(false);
            var members = ToMembers(original);
            if (!members.Any(m => string.Equals(m.Name, member.Name, StringComparison.OrdinalIgnoreCase)))
                throw LoadBalancerErrors.MemberNotFound(Description, member.Name, members);
            var changed = NginxUpstreamConfig.SetDown(original, Description.Backend, member.Name, down);
            if (changed != original)
            {
                var masterPid = await GetMasterPidAsync(cancellationToken).ConfigureAwait(false);
                var oldWorkers = (await GetWorkersAsync(masterPid, cancellationToken).ConfigureAwait(false)).Where(w => !w.ShuttingDown).Select(w => w.Pid).ToList();

                await _shell.WriteTextAsync(BackupPath, original, cancellationToken).ConfigureAwait(false);
                await _shell.WriteTextAsync(ConfigPath, changed, cancellationToken).ConfigureAwait(false);
                try
                {
                    var test = await RunNginxAsync("-t", cancellationToken).ConfigureAwait(false);
                    if (!test.Succeeded)
                        throw new BbException("NginxConfigTestFailed", BbErrorCategory.InvalidData,
                            $"'nginx -t' rejected the configuration after marking '{member.Name}' {(down ? "down" : "up")} in {Where}: {Output(test)} The file was restored; nginx was not reloaded.", ConfigPath);
                    var reload = await RunNginxAsync("-s reload", cancellationToken).ConfigureAwait(false);
                    if (!reload.Succeeded)
                        throw new BbException("NginxReloadFailed", BbErrorCategory.InvalidOperation,
                            $"'nginx -s reload' failed on {_shell.HostName}: {Output(reload)} The file was restored.", ConfigPath);
                    await WaitForNewWorkersAsync(masterPid, oldWorkers, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    await RestoreAsync(original, reload: true).ConfigureAwait(false);
                    throw;
                }
            }
            var after = ToMembers(await ReadConfigAsync(cancellationToken).ConfigureAwait(false))
                .First(m => string.Equals(m.Name, member.Name, StringComparison.OrdinalIgnoreCase));
            if (after.State != expected) throw LoadBalancerErrors.VerifyFailed(Description, member.Name, expected, after);
            return after;
        }

        public override async Task<DrainStatus> GetDrainStatusAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var masterPid = await GetMasterPidAsync(cancellationToken).ConfigureAwait(false);
            var old = (await GetWorkersAsync(masterPid, cancellationToken).ConfigureAwait(false)).Count(w => w.ShuttingDown);
            return new DrainStatus(old == 0, old, $"{old} old nginx worker(s) still finishing requests");
        }

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            $"{(state == MemberAdminState.Ready ? "remove 'down' from" : "mark 'down'")} 'server {member.Name}' in upstream {Description.Backend} of {Where} " +
            $"(backup {BackupPath}), run '{Description.NginxCommand} -t' and '{Description.NginxCommand} -s reload'";

        private async Task<string> ReadConfigAsync(CancellationToken cancellationToken)
        {
            if (!await _shell.PathExistsAsync(ConfigPath, cancellationToken).ConfigureAwait(false))
                throw new BbException("NginxConfigNotFound", BbErrorCategory.ObjectNotFound,
                    $"The NGINX config file {Where} does not exist. Pass the file that holds 'upstream {Description.Backend}' as the endpoint. Nothing was changed.", ConfigPath);
            return await _shell.ReadTextAsync(ConfigPath, cancellationToken).ConfigureAwait(false);
        }

        private async Task RestoreAsync(string original, bool reload)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await _shell.WriteTextAsync(ConfigPath, original, cts.Token).ConfigureAwait(false);
            if (reload) await RunNginxAsync("-s reload", cts.Token).ConfigureAwait(false);
        }

        private async Task<ShellResult> RunNginxAsync(string arguments, CancellationToken cancellationToken)
        {
            var command = Description.NginxCommand + " " + arguments;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var result = await _shell.RunAsync(command, Description.RequestTimeout, cancellationToken).ConfigureAwait(false);
                // 'nginx -T' dumps the whole configuration: log only that it ran.
                var summary = result.Succeeded ? (arguments == "-T" ? "ok" : LoadBalancerDiagnostics.Summarize(Output(result)))
                    : $"exit {result.ExitCode}: {LoadBalancerDiagnostics.Summarize(Output(result))}";
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Process, _shell.HostName, command, summary, watch, null);
                return result;
            }
            catch (Exception ex) when (!(ex is OperationCanceledException))
            {
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Process, _shell.HostName, command, null, watch, ex);
                throw;
            }
        }

        private async Task<int> GetMasterPidAsync(CancellationToken cancellationToken)
        {
            if (_pidFile is null)
            {
                var dump = await RunNginxAsync("-T", cancellationToken).ConfigureAwait(false);
                var m = Regex.Match(dump.StandardOutput, @"^\s*pid\s+([^;\s]+)\s*;", RegexOptions.Multiline);
                _pidFile = m.Success ? m.Groups[1].Value : "/run/nginx.pid";
            }
            string text;
            try
            {
                text = await _shell.ReadTextAsync(_pidFile, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (!(ex is OperationCanceledException))
            {
                throw new BbException("NginxNotRunning", BbErrorCategory.ResourceUnavailable,
                    $"Cannot read the nginx master's pid file {_shell.HostName}:{_pidFile} ({ex.Message}). Is nginx running? Set the pid file (-NginxPidFile) if it is elsewhere. Nothing was changed.", _pidFile, ex);
            }
            if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
                throw new BbException("NginxNotRunning", BbErrorCategory.ResourceUnavailable, $"The pid file {_shell.HostName}:{_pidFile} holds no process id. Is nginx running?", _pidFile);
            return pid;
        }

        private sealed class Worker
        {
            public int Pid;
            public bool ShuttingDown;
        }

        private async Task<List<Worker>> GetWorkersAsync(int masterPid, CancellationToken cancellationToken)
        {
            if (_shell.Platform != ShellPlatform.Posix)
                throw new BbException("NginxUnsupportedPlatform", BbErrorCategory.NotSpecified,
                    $"Watching nginx workers needs a POSIX host; {_shell.HostName} is {_shell.Platform}.", _shell.HostName);
            var ps = await _shell.RunAsync("ps -e -o pid= -o ppid= -o args=", Description.RequestTimeout, cancellationToken).ConfigureAwait(false);
            if (!ps.Succeeded)
                throw new BbException("NginxProcessListFailed", BbErrorCategory.InvalidOperation, $"'ps' failed on {_shell.HostName}: {Output(ps)}", _shell.HostName);
            var workers = new List<Worker>();
            foreach (var line in ps.StandardOutput.Split('\n'))
            {
                var f = line.Trim().Split(new[] { ' ' }, 3, StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 3 || f[1] != masterPid.ToString(CultureInfo.InvariantCulture) || f[2].IndexOf("worker process", StringComparison.Ordinal) < 0) continue;
                workers.Add(new Worker { Pid = int.Parse(f[0], CultureInfo.InvariantCulture), ShuttingDown = f[2].IndexOf("shutting down", StringComparison.Ordinal) >= 0 });
            }
            return workers;
        }

        /// <summary>The reload took effect when the master runs workers that did not exist before (old ones were told to finish).</summary>
        private async Task WaitForNewWorkersAsync(int masterPid, IReadOnlyCollection<int> oldWorkers, CancellationToken cancellationToken)
        {
            var reloaded = await Poller.System.PollAsync(c => GetWorkersAsync(masterPid, c),
                now => now.Any(w => !w.ShuttingDown && !oldWorkers.Contains(w.Pid)) && now.Where(w => !w.ShuttingDown).All(w => !oldWorkers.Contains(w.Pid)),
                new PollOptions<List<Worker>>(Description.RequestTimeout, ReloadPolls), cancellationToken).ConfigureAwait(false);
            if (!reloaded.Reached)
                throw new BbException("NginxReloadFailed", BbErrorCategory.OperationTimeout,
                    $"nginx (master {masterPid}) on {_shell.HostName} did not start new workers within {Description.RequestTimeout.TotalSeconds:0.#} s of the reload; see its error log. The file was restored.", ConfigPath);
        }

        /// <summary>50 ms doubling to 800 ms: a reload takes effect within a few hundred ms.</summary>
        private static readonly PollSchedule ReloadPolls = new PollSchedule(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(800), 2);

        private static string Output(ShellResult r) => (r.StandardError + " " + r.StandardOutput).Trim();

        public override void Dispose()
        {
            if (_ownsShell) _shell.Dispose();
        }
    }
}
