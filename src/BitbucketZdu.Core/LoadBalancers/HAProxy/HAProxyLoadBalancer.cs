using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers.HAProxy
{
    /// <summary>
    /// HAProxy through its runtime API. Every endpoint is one HAProxy instance (an HA pair has two); each change is
    /// applied to all of them and read back from all of them. Needs sockets with <c>level admin</c>.
    /// </summary>
    public sealed class HAProxyLoadBalancer : LoadBalancerBase
    {
        // srv_admin_state bits (doc/management.txt "show servers state")
        private const int MaintMask = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
        private const int DrainMask = 0x08 | 0x10;

        private readonly IReadOnlyList<HAProxyRuntimeClient> _instances;

        public HAProxyLoadBalancer(LoadBalancerDescription description) : base(description)
        {
            _instances = description.Endpoints.Select(e => new HAProxyRuntimeClient(e, description.RequestTimeout)).ToArray();
        }

        private sealed class InstanceMember
        {
            public string Name = "";
            public string? Address;
            public MemberAdminState State;
            public MemberHealth Health;
            public int Sessions;
            public int Queued;
            public string Status = "";
        }

        public override async Task<IReadOnlyList<LoadBalancerMember>> GetMembersAsync(CancellationToken cancellationToken)
        {
            var perInstance = await Task.WhenAll(_instances.Select(i => ReadInstanceAsync(i, cancellationToken))).ConfigureAwait(false);
            var names = perInstance.SelectMany(p => p.Select(m => m.Name)).Distinct(StringComparer.Ordinal).ToList();
            var result = new List<LoadBalancerMember>();
            foreach (var name in names)
            {
                var views = perInstance.Select(p => p.FirstOrDefault(m => m.Name == name)).ToList();
                var present = views.Where(v => v is not null).Select(v => v!).ToList();
                var states = present.Select(v => v.State).Distinct().ToList();
                var state = states.Count == 1 && present.Count == views.Count ? states[0] : MemberAdminState.Unknown;
                var health = present.Any(v => v.Health == MemberHealth.Down) ? MemberHealth.Down
                    : present.All(v => v.Health == MemberHealth.Up) ? MemberHealth.Up : MemberHealth.Unknown;
                result.Add(new LoadBalancerMember(name, present[0].Address, Description.Backend, state, health)
                {
                    ActiveConnections = present.Sum(v => v.Sessions + v.Queued),
                    Status = string.Join(" | ", present.Select(v => v.Status).Distinct()),
                    LoadBalancer = Description.DisplayName,
                    Instances = views.Select((v, i) => $"{_instances[i].Endpoint}: " + (v is null ? "absent" : $"{v.Status} ({v.Sessions} sessions)")).ToArray(),
                });
            }
            return result;
        }

        public override async Task<LoadBalancerMember> SetStateAsync(LoadBalancerMember member, MemberAdminState state, CancellationToken cancellationToken)
        {
            var word = Word(state);
            var command = $"set server {HAProxyRuntimeClient.Escape(Description.Backend)}/{HAProxyRuntimeClient.Escape(member.Name)} state {word}";
            // Sequentially, so a refusal by the first instance (e.g. no 'level admin') changes nothing anywhere.
            foreach (var instance in _instances)
            {
                var reply = (await ExecuteAsync(instance, command, cancellationToken).ConfigureAwait(false)).Trim();
                if (reply.Length > 0)
                {
                    ThrowForReply(instance, reply, member.Name);
                    throw LoadBalancerErrors.Protocol(Description, "HAProxyCommandFailed", instance.Endpoint, $"'{command}' answered '{reply}'.");
                }
            }
            return await ReadBackAsync(member.Name, state, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// <c>set server b/s health up</c> on every instance. An instance that refuses (no health checks on the server,
        /// an older HAProxy, a runtime API without the command) makes it false and the caller waits for the checks.
        /// </summary>
        public override async Task<bool> MarkHealthyAsync(LoadBalancerMember member, CancellationToken cancellationToken)
        {
            var command = $"set server {HAProxyRuntimeClient.Escape(Description.Backend)}/{HAProxyRuntimeClient.Escape(member.Name)} health up";
            var all = true;
            foreach (var instance in _instances)
            {
                var reply = (await ExecuteAsync(instance, command, cancellationToken).ConfigureAwait(false)).Trim();
                if (reply.Length > 0) all = false;
            }
            return all;
        }

        /// <summary>
        /// MAINT "disables any traffic to the server" (a persistence cookie naming it is ignored and the request is
        /// load-balanced to another server), while existing streams are not killed and still count in <c>scur</c>
        /// (HAProxy management guide, <c>set server … state</c>; killing them takes <c>shutdown sessions server</c>).
        /// DRAIN by contrast still accepts new persistent connections, so sticky users keep it busy.
        /// </summary>
        public override bool DrainsInMaintenance => true;

        /// <summary>A read is one 'show stat; show servers state' on the runtime socket per instance: poll at 100 ms.</summary>
        public override TimeSpan? CheapPollInterval => TimeSpan.FromMilliseconds(100);

        protected override string ActiveUnit => _instances.Count > 1 ? $"session(s) across {_instances.Count} instances" : "session(s)";

        public override string DescribeChange(LoadBalancerMember member, MemberAdminState state) =>
            $"set server {Description.Backend}/{member.Name} state {Word(state)} on {string.Join(" and ", _instances.Select(i => i.Endpoint))}";

        private static string Word(MemberAdminState state) => state switch
        {
            MemberAdminState.Ready => "ready",
            MemberAdminState.Draining => "drain",
            MemberAdminState.Maintenance => "maint",
            _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Only Ready, Draining and Maintenance can be set."),
        };

        private async Task<List<InstanceMember>> ReadInstanceAsync(HAProxyRuntimeClient instance, CancellationToken cancellationToken)
        {
            var be = HAProxyRuntimeClient.Escape(Description.Backend);
            var reply = await ExecuteAsync(instance, $"show stat {be} 4 -1;show servers state {be}", cancellationToken).ConfigureAwait(false);
            var text = reply.Replace("\r\n", "\n");
            var firstLine = text.TrimStart('\n').Split('\n')[0].Trim();
            if (!firstLine.StartsWith("#", StringComparison.Ordinal))
                ThrowForReply(instance, firstLine, null);
            var parts = text.Split(new[] { "\n\n" }, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2)
                throw LoadBalancerErrors.Protocol(Description, "HAProxyUnexpectedReply", instance.Endpoint, $"unexpected reply to 'show stat': '{Shorten(text)}'.");

            var members = new List<InstanceMember>();
            var statLines = parts[0].Split('\n').Where(l => l.Length > 0).ToList();
            var header = statLines[0].TrimStart('#', ' ').Split(',');
            int Col(string n) => Array.IndexOf(header, n);
            int cName = Col("svname"), cScur = Col("scur"), cQcur = Col("qcur"), cStatus = Col("status"), cAddr = Col("addr"), cPx = Col("pxname");
            foreach (var line in statLines.Skip(1))
            {
                var f = line.Split(',');
                if (f.Length <= cStatus || f[cPx] != Description.Backend || f[cName] == "BACKEND" || f[cName] == "FRONTEND") continue;
                members.Add(new InstanceMember
                {
                    Name = f[cName],
                    Address = cAddr >= 0 && cAddr < f.Length && f[cAddr].Length > 0 ? f[cAddr] : null,
                    Sessions = ParseInt(f[cScur]),
                    Queued = ParseInt(f[cQcur]),
                    Status = f[cStatus],
                });
            }

            // show servers state: "1", "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...", rows
            var stateLines = parts[1].Split('\n').Where(l => l.Length > 0).ToList();
            var stateHeader = stateLines.FirstOrDefault(l => l.StartsWith("#", StringComparison.Ordinal))?.TrimStart('#', ' ').Split(' ');
            if (stateHeader is null)
                throw LoadBalancerErrors.Protocol(Description, "HAProxyUnexpectedReply", instance.Endpoint, $"unexpected reply to 'show servers state': '{Shorten(parts[1])}'.");
            int sName = Array.IndexOf(stateHeader, "srv_name"), sOp = Array.IndexOf(stateHeader, "srv_op_state"), sAdmin = Array.IndexOf(stateHeader, "srv_admin_state"),
                sAddr = Array.IndexOf(stateHeader, "srv_addr"), sPort = Array.IndexOf(stateHeader, "srv_port");
            foreach (var line in stateLines.Where(l => !l.StartsWith("#", StringComparison.Ordinal)))
            {
                var f = line.Split(' ');
                if (f.Length <= Math.Max(sAdmin, sOp)) continue;
                var m = members.FirstOrDefault(x => x.Name == f[sName]);
                if (m is null) continue;
                var admin = ParseInt(f[sAdmin]);
                m.State = (admin & MaintMask) != 0 ? MemberAdminState.Maintenance : (admin & DrainMask) != 0 ? MemberAdminState.Draining : MemberAdminState.Ready;
                var op = ParseInt(f[sOp]);
                m.Health = m.Status.StartsWith("no check", StringComparison.OrdinalIgnoreCase) ? MemberHealth.Unknown
                    : op == 2 || op == 1 ? MemberHealth.Up : MemberHealth.Down;
                if (m.Address is null && sAddr >= 0 && sPort >= 0 && sPort < f.Length) m.Address = f[sAddr] + ":" + f[sPort];
            }
            return members;
        }

        private async Task<string> ExecuteAsync(HAProxyRuntimeClient instance, string command, CancellationToken cancellationToken)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var reply = await instance.ExecuteAsync(command, cancellationToken).ConfigureAwait(false);
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Runtime, instance.Endpoint, command,
                    command.StartsWith("show ", StringComparison.Ordinal) ? $"{reply.Split('\n').Count(l => l.Trim().Length > 0)} line(s)" : reply, watch, null);
                return reply;
            }
            catch (Exception ex) when (ex is SocketException || ex is IOException || ex is TimeoutException || ex is UnauthorizedAccessException)
            {
                LoadBalancerDiagnostics.Command(Description, LoadBalancerCallKind.Runtime, instance.Endpoint, command, null, watch, ex);
                throw LoadBalancerErrors.Unreachable(Description, instance.Endpoint, ex);
            }
        }

        private void ThrowForReply(HAProxyRuntimeClient instance, string reply, string? member)
        {
            if (reply.IndexOf("Permission denied", StringComparison.OrdinalIgnoreCase) >= 0)
                throw LoadBalancerErrors.PermissionDenied(Description, "HAProxyPermissionDenied", instance.Endpoint,
                    $"the admin socket does not have 'level admin' (HAProxy said '{reply}'). Add 'level admin' to its 'stats socket' line in haproxy.cfg and reload HAProxy.");
            if (reply.StartsWith("No such proxy", StringComparison.OrdinalIgnoreCase) || reply.StartsWith("No such backend", StringComparison.OrdinalIgnoreCase))
                throw LoadBalancerErrors.BackendNotFound(Description, instance.Endpoint);
            if (reply.StartsWith("No such server", StringComparison.OrdinalIgnoreCase) && member is not null)
                throw LoadBalancerErrors.MemberNotFound(Description, member, Array.Empty<LoadBalancerMember>());
            throw LoadBalancerErrors.Protocol(Description, "HAProxyCommandFailed", instance.Endpoint, $"HAProxy answered '{Shorten(reply)}'.");
        }

        private static int ParseInt(string s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
        private static string Shorten(string s) => s.Length > 300 ? s.Substring(0, 300) + "…" : s.Trim();
    }
}
