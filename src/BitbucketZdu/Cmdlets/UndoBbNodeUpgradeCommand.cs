using System;
using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Rolls a node back to its previous install dir: stops the new version, points the service back, starts the old one.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Undo, "BbNodeUpgrade", DefaultParameterSetName = HostNameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Undo-BbNodeUpgrade.md")]
    [OutputType(typeof(NodeStepResult))]
    public sealed class UndoBbNodeUpgradeCommand : BbNodeCmdlet
    {
        /// <summary>The install dir to go back to (default: the one -InstallDir was staged next to).</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        public string? PreviousInstallDir { get; set; }

        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 600;

        /// <summary>Kill the new version when it does not stop in time.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>Start flags for the old version's bin/start-bitbucket.sh (e.g. --no-search).</summary>
        [Parameter]
        public string[]? StartArgument { get; set; }

        protected override void ProcessRecord()
        {
            if (string.IsNullOrEmpty(InstallDir) && string.IsNullOrEmpty(PreviousInstallDir))
                ThrowError("UndoBbNodeUpgradeNoInstallDir", ErrorCategory.InvalidArgument,
                    "Say where to go back to: -PreviousInstallDir <old dir>, or -InstallDir <new dir> staged by Copy-BbDistribution.");
            var timeout = TimeSpan.FromSeconds(TimeoutSec);
            RunStep($"Roll back to {PreviousInstallDir ?? "the previous install dir"} (stops the node if a newer version runs)", async (steps, _, ct) =>
            {
                string oldDir;
                string? newDir;
                if (!string.IsNullOrEmpty(PreviousInstallDir))
                {
                    oldDir = PreviousInstallDir!;
                    newDir = string.IsNullOrEmpty(InstallDir) || InstallDir == PreviousInstallDir ? null : InstallDir;
                }
                else
                {
                    var current = await steps.DiscoverAsync(InstallDir, ct).ConfigureAwait(false);
                    oldDir = current.PreviousInstallDir ?? current.InstallDir;
                    newDir = current.PreviousInstallDir is null ? null : current.InstallDir;
                }
                return await steps.RollBackAsync(oldDir, newDir, new NodeStopOptions { Timeout = timeout, Kill = Force },
                    new NodeStartOptions { Timeout = timeout, StartArguments = StartArgument }, ct).ConfigureAwait(false);
            });
        }
    }
}
