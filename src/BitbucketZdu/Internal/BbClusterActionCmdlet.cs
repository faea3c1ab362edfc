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

        private string InvalidStateErrorId => MyInvocation.MyCommand.Name.Replace("-", string.Empty) + "InvalidState";

        protected override void ProcessRecord()
        {
            var before = ReadCluster();
            var verdict = ZduStateRules.Check(before, Action);
            if (!verdict.Allowed)
                ThrowError(InvalidStateErrorId, ErrorCategory.InvalidOperation,
                    $"{ActionDescription} is not possible now on {Client.BaseUri}: {verdict.Reason}", before);
            WriteVerbose(verdict.Reason);

            var target = $"{Client.BaseUri} ({before.StateText}; {ZduStateRules.DescribeNodes(before)})";
            if (!ShouldProcess(target, ActionDescription)) return;

            var after = RunApi((client, _, ct) => SendAsync(client, ct));
            WriteVerbose($"{ActionDescription}: done. {ZduStateRules.DescribeCluster(after)}");
            if (PassThru) WriteObject(after);
        }
    }
}
