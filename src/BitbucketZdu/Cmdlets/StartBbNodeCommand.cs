using System;
using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Starts Bitbucket on a node (service or bin/start-bitbucket.sh) and waits until its /status says RUNNING.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "BbNode", DefaultParameterSetName = HostNameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.CommandsBase + "Start-BbNode.md")]
    [OutputType(typeof(NodeStepResult))]
    public sealed class StartBbNodeCommand : BbNodeCmdlet
    {
        /// <summary>How long to wait for RUNNING.</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 600;

        /// <summary>Start flags for bin/start-bitbucket.sh (default: those recorded by Install-BbNodeVersion, e.g. --no-search).</summary>
        [Parameter]
        public string[]? StartArgument { get; set; }

        /// <summary>The status URL to poll (default http://&lt;host&gt;:&lt;server.port&gt;/status).</summary>
        [Parameter]
        public Uri? StatusUri { get; set; }

        /// <summary>Return once the start command ran, without waiting for RUNNING.</summary>
        [Parameter]
        public SwitchParameter NoWait { get; set; }

        protected override void ProcessRecord()
        {
            if (StatusUri is not null && StatusUri.Scheme != Uri.UriSchemeHttp && StatusUri.Scheme != Uri.UriSchemeHttps)
                ThrowError("StartBbNodeInvalidStatusUri", ErrorCategory.InvalidArgument, $"-StatusUri must be http or https, not '{StatusUri}'.", StatusUri);
            var options = new NodeStartOptions { Timeout = TimeSpan.FromSeconds(TimeoutSec), StartArguments = StartArgument, StatusUri = StatusUri, NoWait = NoWait };
            RunStep("Start Bitbucket", async (steps, _, ct) =>
                await steps.StartAsync(await steps.DiscoverAsync(InstallDir, ct).ConfigureAwait(false), options, ct).ConfigureAwait(false));
        }
    }
}
