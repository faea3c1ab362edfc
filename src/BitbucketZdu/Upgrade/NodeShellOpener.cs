using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Nodes;

namespace BitbucketZdu.Upgrade
{
    /// <summary>
    /// Opens the shells that reach a profile's nodes, on first use: this machine, plain SSH, or a PowerShell session
    /// (SSH or WinRM). Sessions are opened from a private local runspace on the engine's background thread, so nothing
    /// runs in (or changes variables of) the caller's session, and a run that never needs a node opens nothing. A node
    /// whose session cannot be opened gets a failed shell, which preflight reports before anything changes.
    /// </summary>
    internal sealed class NodeShellOpener : IDisposable
    {
        private readonly PSCredential? _credential;
        private readonly Lazy<Runspace> _local = new Lazy<Runspace>(() =>
        {
            var rs = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
            rs.Open();
            return rs;
        });
        private readonly SemaphoreSlim _gate = new SemaphoreSlim(1, 1);
        private readonly ConcurrentDictionary<string, Task<INodeShell>> _opened = new ConcurrentDictionary<string, Task<INodeShell>>(StringComparer.OrdinalIgnoreCase);

        private readonly Lazy<SessionHost> _host = new Lazy<SessionHost>(SessionHost.Current);

        public NodeShellOpener(PSCredential? remotingCredential) => _credential = remotingCredential;

        public Task<INodeShell> OpenAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            var target = RemotingTarget.Parse(node);
            var direct = target.OpenDirect();
            if (direct is not null) return Task.FromResult(direct);
            return _opened.GetOrAdd(node.Name, _ => Task.Run(() => OpenSessionAsync(target, node), cancellationToken));
        }

        /// <summary>What the machine running the upgrade offers for PowerShell sessions.</summary>
        internal sealed class SessionHost
        {
            public bool IsWindows { get; set; }
            /// <summary>Windows PowerShell 5.1 (Desktop) rather than PowerShell 7 (Core).</summary>
            public bool IsDesktop { get; set; }
            public Version PowerShellVersion { get; set; } = new Version(7, 4);
            /// <summary>A WSMan client library is loadable (always on Windows; on Linux/macOS only with PSWSMan's libmi).</summary>
            public bool HasWSMan { get; set; }

            public static SessionHost Current()
            {
                var isWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);
                var home = Path.GetDirectoryName(typeof(PSObject).Assembly.Location) ?? "";
                return new SessionHost
                {
                    IsWindows = isWindows,
                    IsDesktop = Loading.ModuleInitializer.IsNetFramework,
                    PowerShellVersion = PSVersion(),
                    HasWSMan = isWindows || File.Exists(Path.Combine(home, "libmi.so")) || File.Exists(Path.Combine(home, "libmi.dylib")),
                };
            }

            private static Version PSVersion()
            {
                // $PSVersionTable's value, read without a runspace (PSVersionInfo is internal in PowerShell Standard).
                var t = typeof(PSObject).Assembly.GetType("System.Management.Automation.PSVersionInfo");
                var v = t?.GetProperty("PSVersion", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(null);
                return v as Version ?? (v is not null && Version.TryParse(v.ToString(), out var parsed) ? parsed : typeof(PSObject).Assembly.GetName().Version ?? new Version(5, 1));
            }
        }

        /// <summary>The parameters of New-PSSession (and of New-PSSessionOption, empty when none) for one node, or why it cannot be opened from here.</summary>
        internal static (Hashtable Session, Hashtable Option) SessionParameters(RemotingTarget target, NodeProfile node, PSCredential? credential, SessionHost host)
        {
            var p = new Hashtable { ["ErrorAction"] = "Stop" };
            var o = new Hashtable();
            if (target.Kind == RemotingKind.WinRM)
            {
                RequireWSMan(host, $"{node.Place}.Remoting is {target}", node.Name);
                if (target.UserName is not null)
                {
                    if (credential is null)
                        throw new BbException("NodeRemotingCredentialMissing", BbErrorCategory.InvalidArgument,
                            $"{node.Place}.Remoting names the user '{target.UserName}' ({target}) but no -RemotingCredential was given: WinRM needs that user's password. Pass -RemotingCredential (Get-Credential {target.UserName}), or drop the user to sign in as the current account.", node.Name);
                    if (!string.Equals(credential.UserName, target.UserName, StringComparison.OrdinalIgnoreCase))
                        throw new BbException("NodeRemotingCredentialMismatch", BbErrorCategory.InvalidArgument,
                            $"{node.Place}.Remoting names the user '{target.UserName}' but -RemotingCredential is for '{credential.UserName}'. Make them the same, or drop the user from the Remoting URL.", node.Name);
                }
                var auth = target.WinRM.Authentication;
                if ((auth == "CredSSP" || auth == "Basic") && credential is null)
                    throw new BbException("NodeRemotingCredentialMissing", BbErrorCategory.InvalidArgument,
                        $"{node.Place}.WinRM.Authentication is {auth}, which needs -RemotingCredential (there is no current-user sign-in with {auth}).", node.Name);
                if (auth == "Basic" && !target.UseSsl)
                    throw new BbException("NodeWinRMInsecure", BbErrorCategory.SecurityError,
                        $"{node.Place}.WinRM.Authentication is Basic over HTTP: the password would cross the network readable. Use UseSSL = $true (port 5986) or Kerberos/Negotiate.", node.Name);
                p["ComputerName"] = target.Host;
                if (credential is not null) p["Credential"] = credential;
                if (target.UseSsl) p["UseSSL"] = true;
                if (auth is not null) p["Authentication"] = auth;
                if (target.WinRM.ConfigurationName is not null) p["ConfigurationName"] = target.WinRM.ConfigurationName;
                if (target.WinRM.SkipCACheck == true) o["SkipCACheck"] = true;
                if (target.WinRM.SkipCNCheck == true) o["SkipCNCheck"] = true;
                if (target.WinRM.SkipRevocationCheck == true) o["SkipRevocationCheck"] = true;
            }
            else
            {
                RequireSshRemoting(host, $"{node.Place}.Remoting is {target}", node.Name);
                p["HostName"] = target.Host;
                if (target.UserName is not null) p["UserName"] = target.UserName;
                if (target.Ssh.KeyFilePath is not null) p["KeyFilePath"] = target.Ssh.KeyFilePath;
                // PowerShell 7.3+ passes -Options to ssh as -o key=value: pin the host keys as plain SSH does.
                if (target.Ssh.KnownHostsFile is not null)
                {
                    if (host.PowerShellVersion < new Version(7, 3))
                        throw new BbException("NodeTransportNeedsPowerShell73", BbErrorCategory.NotInstalled,
                            $"{node.Place}.Ssh.KnownHostsFile pins the host keys of {target}, which needs New-PSSession -Options (PowerShell 7.3+); this is PowerShell {host.PowerShellVersion}. Run from PowerShell 7.4+.", node.Name);
                    p["Options"] = new Hashtable { ["UserKnownHostsFile"] = target.Ssh.KnownHostsFile, ["StrictHostKeyChecking"] = "yes" };
                }
            }
            if (target.Port is int port) p["Port"] = port;
            return (p, o);
        }

        /// <summary>WinRM sessions need a WSMan client: Windows has one; PowerShell 7 on Linux/macOS only with PSWSMan.</summary>
        internal static void RequireWSMan(SessionHost host, string what, string nodeName)
        {
            if (!host.HasWSMan)
                throw new BbException("NodeWSManUnavailable", BbErrorCategory.NotInstalled,
                    $"{what} (WinRM) but this machine has no WSMan client: PowerShell {host.PowerShellVersion} on Linux or macOS cannot open WinRM sessions. " +
                    "Reach the node with pwsh+ssh://user@host (PowerShell's SSH remoting; OpenSSH server on the node), or install the PSWSMan module here (Install-Module PSWSMan; Install-WSMan) and run again.", nodeName);
        }

        /// <summary>PowerShell sessions over SSH (New-PSSession -HostName) exist from PowerShell 7 on.</summary>
        internal static void RequireSshRemoting(SessionHost host, string what, string nodeName)
        {
            if (host.IsDesktop || host.PowerShellVersion.Major < 7)
                throw new BbException("NodeTransportNeedsPowerShell7", BbErrorCategory.NotInstalled,
                    $"{what}: PowerShell sessions over SSH (New-PSSession -HostName) need PowerShell 7; this is Windows PowerShell {host.PowerShellVersion}. " +
                    "Run from PowerShell 7.4+, or use plain SSH (ssh://user@host, -Transport Ssh; Linux nodes) or WinRM.", nodeName);
        }

        /// <summary>One loud warning per node whose profile turns WinRM certificate checks off (written on the pipeline thread before the run).</summary>
        internal static IEnumerable<string> CertificateCheckWarnings(IEnumerable<NodeProfile> nodes) =>
            nodes.Where(n => RemotingTarget.TryParse(n.RemotingTarget)?.Kind == RemotingKind.WinRM)
                .Select(n => (n, skips: new[] { ("SkipCACheck", n.WinRM.SkipCACheck), ("SkipCNCheck", n.WinRM.SkipCNCheck), ("SkipRevocationCheck", n.WinRM.SkipRevocationCheck) }
                    .Where(x => x.Item2 == true).Select(x => x.Item1).ToList()))
                .Where(x => x.skips.Count > 0)
                .Select(x => $"WinRM certificate checks are OFF for {x.n.Name} ({string.Join(", ", x.skips)} in {x.n.Place}.WinRM): anyone on the path can pose as the node and read the credential. Use this only until the node has a trusted certificate.");

        private async Task<INodeShell> OpenSessionAsync(RemotingTarget target, NodeProfile node)
        {
            var (p, option) = SessionParameters(target, node, _credential, _host.Value);
            PSSession? session;
            await _gate.WaitAsync().ConfigureAwait(false); // one pipeline at a time in the private runspace
            try
            {
                if (option.Count > 0)
                {
                    using var po = PowerShell.Create();
                    po.Runspace = _local.Value;
                    p["SessionOption"] = po.AddCommand("New-PSSessionOption").AddParameters(option).Invoke().FirstOrDefault();
                }
                using var ps = PowerShell.Create();
                ps.Runspace = _local.Value;
                session = ps.AddCommand("New-PSSession").AddParameters(p).Invoke<PSSession>().FirstOrDefault();
            }
            catch (RuntimeException ex)
            {
                throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError,
                    $"Cannot open a PowerShell session to {node.Name} ({target}) named by {node.Place}.Remoting: {ex.Message}", node.Name, ex);
            }
            finally
            {
                _gate.Release();
            }
            if (session is null)
                throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError, $"New-PSSession to {target} returned no session.", node.Name);
            return await PSSessionShell.CreateAsync(session, s => s.Runspace.Dispose(), CancellationToken.None).ConfigureAwait(false);
        }

        public void Dispose()
        {
            if (_local.IsValueCreated) _local.Value.Dispose();
            _gate.Dispose();
        }
    }
}
