using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Linq;
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

        public NodeShellOpener(PSCredential? remotingCredential) => _credential = remotingCredential;

        public Task<INodeShell> OpenAsync(NodeProfile node, CancellationToken cancellationToken)
        {
            var target = RemotingTarget.Parse(node);
            var direct = target.OpenDirect();
            if (direct is not null) return Task.FromResult(direct);
            return _opened.GetOrAdd(node.Name, _ => Task.Run(() => OpenSessionAsync(target, node), cancellationToken));
        }

        private async Task<INodeShell> OpenSessionAsync(RemotingTarget target, NodeProfile node)
        {
            var p = new Hashtable { ["ErrorAction"] = "Stop" };
            if (target.Kind == RemotingKind.WinRM)
            {
                p["ComputerName"] = target.Host;
                if (_credential is not null) p["Credential"] = _credential;
            }
            else
            {
                p["HostName"] = target.Host;
                if (target.UserName is not null) p["UserName"] = target.UserName;
                if (target.Ssh.KeyFilePath is not null) p["KeyFilePath"] = target.Ssh.KeyFilePath;
                // PowerShell 7.3+ passes -Options to ssh as -o key=value: pin the host keys as plain SSH does.
                if (target.Ssh.KnownHostsFile is not null)
                    p["Options"] = new Hashtable { ["UserKnownHostsFile"] = target.Ssh.KnownHostsFile, ["StrictHostKeyChecking"] = "yes" };
            }
            if (target.Port is int port) p["Port"] = port;
            PSSession? session;
            await _gate.WaitAsync().ConfigureAwait(false); // one pipeline at a time in the private runspace
            try
            {
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
