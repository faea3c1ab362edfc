using System.Management.Automation;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Forgets the default Bitbucket connection of this session.</para>
    /// </summary>
    [Cmdlet(VerbsCommunications.Disconnect, "BbCluster", HelpUri = HelpLinks.CommandsBase + "Disconnect-BbCluster.md")]
    [OutputType(typeof(void))]
    public sealed class DisconnectBbClusterCommand : BbCmdlet
    {
        protected override void ProcessRecord()
        {
            var removed = ConnectionStore.Remove();
            if (removed is null)
            {
                WriteVerbose("There was no default connection.");
                return;
            }
            WriteVerbose($"Disconnected from {removed.Uri}.");
            removed.Dispose();
        }
    }
}
