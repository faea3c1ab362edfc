using System.Management.Automation;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Configures a pre-staged install dir: same BITBUCKET_HOME, carried JVM/JRE/user settings and files, start flags, and the service pointed at it.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Install, "BbNodeVersion", DefaultParameterSetName = HostNameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.CommandsBase + "Install-BbNodeVersion.md")]
    [OutputType(typeof(NodeStepResult))]
    public sealed class InstallBbNodeVersionCommand : BbNodeCmdlet
    {
        /// <summary>The pre-staged dir (Copy-BbDistribution's NewInstallDir).</summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string NewInstallDir { get; set; } = "";

        /// <summary>Further files, relative to the install dir, to copy whole from the old dir (e.g. conf/server.xml).</summary>
        [Parameter]
        public string[]? CarryFile { get; set; }

        /// <summary>Further variables of bin/_start-webapp.sh to carry, on top of JVM_MINIMUM_MEMORY, JVM_MAXIMUM_MEMORY and JVM_SUPPORT_RECOMMENDED_ARGS.</summary>
        [Parameter]
        public string[]? JvmVariable { get; set; }

        /// <summary>Start flags to record for bin-script starts (default: those of the current service definition).</summary>
        [Parameter]
        public string[]? StartArgument { get; set; }

        protected override void ProcessRecord()
        {
            var options = new NodeConfigureOptions { StartArguments = StartArgument };
            foreach (var f in CarryFile ?? System.Array.Empty<string>()) options.Files.Add(f);
            foreach (var v in JvmVariable ?? System.Array.Empty<string>()) if (!options.JvmVariables.Contains(v)) options.JvmVariables.Add(v);
            RunStep($"Configure {NewInstallDir} from the current install and point the service at it", async (steps, _, ct) =>
                await steps.ConfigureAsync(await steps.DiscoverAsync(InstallDir, ct).ConfigureAwait(false), NewInstallDir, options, ct).ConfigureAwait(false));
        }
    }
}
