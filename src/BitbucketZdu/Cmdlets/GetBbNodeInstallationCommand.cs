using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Gets a node's Bitbucket installation: install dir and version, home, how it runs, run-as user, HTTP port, free disk space.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BbNodeInstallation", DefaultParameterSetName = HostNameSet, HelpUri = HelpLinks.CommandsBase + "Get-BbNodeInstallation.md")]
    [OutputType(typeof(NodeInstallation))]
    public sealed class GetBbNodeInstallationCommand : BbNodeCmdlet
    {
        protected override void ProcessRecord() =>
            RunStep(null, async (steps, _, ct) => await steps.DiscoverAsync(InstallDir, ct).ConfigureAwait(false));
    }
}
