using System;
using System.Collections;
using System.Collections.Generic;
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
    /// Opens the shells that reach a profile's nodes. PowerShell sessions (SSH or WinRM) are opened here, up front, on
    /// the pipeline thread (New-PSSession cannot run from the engine's background work); a node whose session cannot
    /// be opened gets a failed shell, which preflight reports as "remoting unreachable" before anything changes.
    /// </summary>
    internal static class NodeShellOpener
    {
        public static Func<NodeProfile, CancellationToken, Task<INodeShell>> Create(ClusterProfile profile, PSCmdlet cmdlet, PSCredential? remotingCredential)
        {
            var sessions = new Dictionary<string, Task<INodeShell>>(StringComparer.OrdinalIgnoreCase);
            foreach (var node in profile.Nodes)
            {
                RemotingTarget target;
                try
                {
                    target = RemotingTarget.Parse(node);
                }
                catch (BbException ex)
                {
                    sessions[node.Name] = Task.FromException<INodeShell>(ex);
                    continue;
                }
                if (target.Kind is RemotingKind.Local or RemotingKind.Ssh) continue;
                sessions[node.Name] = OpenSession(target, node, cmdlet, remotingCredential);
            }
            return (node, ct) => sessions.TryGetValue(node.Name, out var opened)
                ? opened
                : Task.FromResult(RemotingTarget.Parse(node).OpenDirect()!);
        }

        private static Task<INodeShell> OpenSession(RemotingTarget target, NodeProfile node, PSCmdlet cmdlet, PSCredential? credential)
        {
            var p = new Hashtable { ["ErrorAction"] = "Stop" };
            if (target.Kind == RemotingKind.WinRM)
            {
                p["ComputerName"] = target.Host;
                if (credential is not null) p["Credential"] = credential;
            }
            else
            {
                p["HostName"] = target.Host;
                if (target.UserName is not null) p["UserName"] = target.UserName;
            }
            if (target.Port is int port) p["Port"] = port;
            cmdlet.WriteVerbose($"{node.Name}: opening a PowerShell session ({target}).");
            try
            {
                var session = cmdlet.InvokeCommand.InvokeScript(true, ScriptBlock.Create("param($p) New-PSSession @p"), null, p)
                    .Select(o => o.BaseObject).OfType<PSSession>().FirstOrDefault()
                    ?? throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError, $"New-PSSession to {target} returned no session.", node.Name);
                return OpenShellAsync(session);
            }
            catch (RuntimeException ex)
            {
                return Task.FromException<INodeShell>(new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError,
                    $"Cannot open a PowerShell session to {node.Name} ({target}) named by {node.Place}.Remoting: {ex.Message}", node.Name, ex));
            }
        }

        private static async Task<INodeShell> OpenShellAsync(PSSession session) =>
            await PSSessionShell.CreateAsync(session, s => s.Runspace.Dispose(), CancellationToken.None).ConfigureAwait(false);
    }
}
