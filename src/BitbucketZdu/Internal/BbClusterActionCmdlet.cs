using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Rules;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// A state-changing rolling-upgrade action (start, cancel, approve): reads the cluster, checks the state rules and
    /// refuses with <c>&lt;Verb&gt;&lt;Noun&gt;InvalidState</c> instead of sending a request Bitbucket would refuse, asks
    /// ShouldProcess, sends the POST once, and with -PassThru returns the cluster.
    /// </summary>
    public abstract class BbClusterActionCmdlet : BbClusterCmdlet
    {
        /// <summary>Return the cluster as it is after the change.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected abstract ZduAction Action { get; }

        /// <summary>What ShouldProcess shows: "Enable upgrade mode".</summary>
        protected abstract string ActionDescription { get; }

        protected abstract Task<ZduCluster> SendAsync(IZduClient client, CancellationToken cancellationToken);

        /// <summary>A check of the action's own after the state rules, before ShouldProcess (refuse with ThrowError).</summary>
        protected virtual void CheckBefore(ZduCluster before) { }

        /// <summary>What follows the POST (wait for the action's outcome); returns the cluster to report.</summary>
        protected virtual ZduCluster AfterSend(ZduCluster after) => after;

        /// <summary>
        /// After approve or retryUpgrade: waits while the finalization tasks run (RUNNING_UPGRADE_TASKS) for STABLE;
        /// UPGRADE_TASKS_FAILED becomes <paramref name="failedErrorId"/> with the next step (Resume-BbUpgradeTask).
        /// </summary>
        protected ZduCluster WaitForFinalizationTasks(ZduCluster after, int timeoutSec, string failedErrorId, string what)
        {
            if (after.State == ClusterState.RUNNING_UPGRADE_TASKS)
            {
                WriteVerbose("The finalization tasks run (RUNNING_UPGRADE_TASKS); waiting for STABLE or UPGRADE_TASKS_FAILED.");
                after = RunApi((client, bridge, ct) => ZduWaiter.WaitForClusterStateAsync(client,
                    new[] { ClusterState.STABLE, ClusterState.UPGRADE_TASKS_FAILED }, System.TimeSpan.FromSeconds(timeoutSec), bridge, null, ct));
            }
            if (after.State == ClusterState.UPGRADE_TASKS_FAILED)
                ThrowError(failedErrorId, ErrorCategory.InvalidResult,
                    $"{what}: the cluster at {Client.BaseUri} is UPGRADE_TASKS_FAILED. {ZduStateRules.DescribeCluster(after)} "
                    + "See atlassian-bitbucket.log on the nodes for the failed task, fix its cause, then run Resume-BbUpgradeTask to run the tasks again (POST /rest/zdu/retryUpgrade).",
                    Client.BaseUri, "Find the failed task in atlassian-bitbucket.log on the nodes, fix its cause, then run Resume-BbUpgradeTask.");
            return after;
        }

        private string InvalidStateErrorId => MyInvocation.MyCommand.Name.Replace("-", string.Empty) + "InvalidState";

        protected override void ProcessRecord()
        {
            var before = ReadCluster();
            var verdict = ZduStateRules.Check(before, Action);
            if (!verdict.Allowed)
                ThrowError(InvalidStateErrorId, ErrorCategory.InvalidOperation,
                    $"{ActionDescription} is not possible now on {Client.BaseUri}: {verdict.Reason}", Client.BaseUri,
                    "Get-BbClusterStatus shows the cluster's state and the actions it allows now.");
            WriteVerbose(verdict.Reason);
            CheckBefore(before);

            var target = $"{Client.BaseUri} ({before.StateText}; {ZduStateRules.DescribeNodes(before)})";
            if (!ShouldProcess(target, ActionDescription)) return;

            var after = RunApi((client, _, ct) => SendAsync(client, ct));
            after = AfterSend(after);
            WriteVerbose($"{ActionDescription}: done. {ZduStateRules.DescribeCluster(after)}");
            if (PassThru) WriteObject(after);
        }
    }
}
