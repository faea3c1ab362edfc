using BitbucketZdu.Completion;
using System;
using System.Collections;
using System.Management.Automation;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Upgrades one node end to end while the cluster is in upgrade mode: out of rotation, graceful stop, OFFLINE, install, start, health gate, back into rotation; restored on failure.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "BbNodeUpgrade", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Invoke-BbNodeUpgrade.md")]
    [OutputType(typeof(NodeUpgradeReport))]
    public sealed class InvokeBbNodeUpgradeCommand : BbUpgradeCmdlet
    {
        /// <summary>The node, as the profile names it (nodes of (Get-BbClusterStatus).Nodes bind by their Name).</summary>
        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("NodeName")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeCompleter))]
        public string Name { get; set; } = null!;

        /// <summary>Script blocks per phase (@{ NodeHealthy = { ... } }); each gets the event as $_. A throw restores the node.</summary>
        [Parameter]
        public Hashtable? Hook { get; set; }

        protected override void ProcessRecord()
        {
            var profile = LoadProfile();
            if (!ConfirmOnce(Name, $"Upgrade node {Name} to {profile.TargetVersion}: out of rotation, stop, install, start, health gate, back into rotation"))
                return;
            using var ports = CreatePorts(profile);
            var report = RunOrThrow<NodeUpgradeReport?>((bridge, ct) => new RollingUpgradeRunner(ports, StepHost(bridge))
                .UpgradeNodeAsync(profile, Name, new RollingUpgradeOptions { Hook = MapHook(Hook, bridge) }, ct), Name);
            if (report is not null) WriteObject(report);
        }
    }
}
