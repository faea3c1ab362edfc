using System;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Finalizes the rolling upgrade once every active node runs the new version (POST /rest/zdu/approve).</para>
    /// <para type="description">Waits while the finalization tasks run (RUNNING_UPGRADE_TASKS) until the cluster is
    /// STABLE; UPGRADE_TASKS_FAILED is an error whose next step is Resume-BbUpgradeTask. Refuses without -Force while a
    /// node is OFFLINE: Bitbucket ignores OFFLINE nodes, which stay on the old version and cannot rejoin.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Complete, "BbRollingUpgrade", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Complete-BbRollingUpgrade.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class CompleteBbRollingUpgradeCommand : BbClusterActionCmdlet
    {
        /// <summary>Finalize although a node is OFFLINE (it stays on the old version and must be upgraded before it rejoins).</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>Seconds to wait for the finalization tasks (RUNNING_UPGRADE_TASKS) to end.</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 600;

        protected override ZduAction Action => ZduAction.Approve;

        protected override string ActionDescription => "Finalize the rolling upgrade";

        protected override Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken) => client.ApproveAsync(cancellationToken);

        protected override void CheckBefore(ZduCluster before)
        {
            var offline = before.Nodes.Where(n => n.State == NodeState.OFFLINE).ToList();
            if (offline.Count == 0) return;
            var names = string.Join(", ", offline.Select(n => $"{n.Name ?? n.Id} ({n.IpAddress ?? "no address"})"));
            var newVersion = before.Nodes.Where(n => n.State != NodeState.OFFLINE).Select(n => n.Version).FirstOrDefault(v => v is not null) ?? "the new version";
            var message = $"{offline.Count} node(s) are OFFLINE: {names}. Bitbucket ignores OFFLINE nodes when it allows finalizing, so finalizing now leaves "
                + $"{(offline.Count == 1 ? "that node" : "those nodes")} on the original version {before.OriginalVersion ?? "(unknown)"}: once upgrade mode is off, a node on another version than {newVersion} cannot rejoin the cluster. "
                + "Upgrade and start it first, or remove it from the cluster for good; then finalize. -Force finalizes anyway.";
            if (!Force)
                ThrowError("CompleteBbRollingUpgradeNodeOffline", ErrorCategory.InvalidOperation, message, Client.BaseUri,
                    $"Upgrade and start {string.Join(", ", offline.Select(n => n.Name ?? n.Id))} (Invoke-BbNodeUpgrade), or remove {(offline.Count == 1 ? "it" : "them")} from the cluster; then run Complete-BbRollingUpgrade again.");
            WriteWarning(message);
        }

        protected override ZduCluster AfterSend(ZduCluster after) =>
            WaitForFinalizationTasks(after, TimeoutSec, "CompleteBbRollingUpgradeTasksFailed", "The upgrade was approved but its finalization tasks failed");
    }
}
