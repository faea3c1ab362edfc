using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Runs the failed finalization tasks of an approved rolling upgrade again (POST /rest/zdu/retryUpgrade).</para>
    /// <para type="description">Only in UPGRADE_TASKS_FAILED. Waits while the tasks run (RUNNING_UPGRADE_TASKS) until
    /// the cluster is STABLE; failing again is an error.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Resume, "BbUpgradeTask", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Resume-BbUpgradeTask.md")]
    [OutputType(typeof(ZduCluster))]
    public sealed class ResumeBbUpgradeTaskCommand : BbClusterActionCmdlet
    {
        /// <summary>Seconds to wait for the finalization tasks (RUNNING_UPGRADE_TASKS) to end.</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 600;

        protected override ZduAction Action => ZduAction.RetryUpgrade;

        protected override string ActionDescription => "Run the failed finalization tasks again";

        protected override Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken) => client.RetryUpgradeAsync(cancellationToken);

        protected override ZduCluster AfterSend(ZduCluster after) =>
            WaitForFinalizationTasks(after, TimeoutSec, "ResumeBbUpgradeTaskFailed", "The finalization tasks failed again");
    }
}
