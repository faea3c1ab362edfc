using System;
using System.Collections;
using System.Management.Automation;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Report;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Upgrades every node of a cluster to a newer bug-fix release, one node at a time, with no downtime: preflight, plan, pre-stage, upgrade mode, nodes least busy first, finalize.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "BbRollingUpgrade", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.CommandsBase + "Invoke-BbRollingUpgrade.md")]
    [OutputType(typeof(UpgradeReport), typeof(UpgradePlan))]
    public sealed class InvokeBbRollingUpgradeCommand : BbUpgradeCmdlet
    {
        /// <summary>Continue the unfinished run recorded in the cluster's journal, re-checking the real state first.</summary>
        [Parameter]
        public SwitchParameter Resume { get; set; }

        /// <summary>Like -Resume, and take over an upgrade in progress that the journal has no run of (journal lost) from the real state: node versions, rotation, upgrade mode. Refuses where that state is ambiguous.</summary>
        [Parameter]
        public SwitchParameter Adopt { get; set; }

        /// <summary>Upgrade this many nodes, then stop cleanly (cluster MIXED, upgrade mode on, every node in rotation, the journal saying paused) so a canary can be watched; -Resume does the rest.</summary>
        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int? StopAfter { get; set; }

        /// <summary>
        /// Up to this many nodes out of rotation and upgraded at the same time (a batch; default 1, or the profile's
        /// MaxUnavailable). The capacity rule holds at every moment: at least half the nodes (rounded up, or the profile's
        /// MinNodesInRotation) stay ACTIVE and in rotation. The next batch starts once the whole batch passed its health gates.
        /// </summary>
        [Parameter]
        public int? MaxUnavailable { get; set; }

        /// <summary>Script blocks per phase (@{ NodeUpgraded = { ... }; '*' = { ... } }); each gets the event as $_. A throw at a node phase fails (and restores) that node.</summary>
        [Parameter]
        public Hashtable? Hook { get; set; }

        protected override void ProcessRecord()
        {
            var profile = LoadProfile();
            // -MaxUnavailable wins over the profile's setting; the engine refuses a bad value (UpgradeMaxUnavailableInvalid,
            // UpgradeCapacityRuleBroken) before anything changes, -WhatIf included.
            if (MaxUnavailable is int n) profile.MaxUnavailable = n;
            try
            {
                CapacityRule.Validate(profile);
            }
            catch (Core.BbException bad)
            {
                ThrowTerminatingError(BbErrors.FromException(bad, profile.Name));
                return;
            }
            if (!ConfirmOnce(profile.BaseUrl.ToString(),
                    $"Rolling upgrade of cluster '{profile.Name}' to {profile.TargetVersion}: {profile.Nodes.Count} nodes taken out of rotation, stopped and upgraded "
                    + (profile.MaxUnavailable > 1 ? $"up to {profile.MaxUnavailable} at a time" : "one at a time") + ", then finalized"))
                return;
            using var ports = CreatePorts(profile);
            RollingUpgradeResult result;
            try
            {
                result = Run((bridge, ct) => new RollingUpgradeRunner(ports, StepHost(bridge))
                    .RunAsync(profile, new RollingUpgradeOptions
                    {
                        Resume = Resume || Adopt, Adopt = Adopt, Hook = MapHook(Hook, bridge), StopAfter = StopAfter,
                        // One run id: the -LogPath log's, the journal's and the report's (a resumed run's lines switch to its id).
                        RunId = RunId, OnRunId = ContinueRun,
                    }, ct));
            }
            catch (UpgradeHaltedException halted)
            {
                WriteObject(halted.Report);
                ThrowTerminatingError(BbErrors.FromException(halted, profile.Name));
                return;
            }
            catch (PipelineStoppedException)
            {
                throw;
            }
            catch (Exception ex) when (!(ex is PipelineStoppedException))
            {
                // A refused credential or an unreachable API is about the URL that answered (or did not), not the cluster's name.
                ThrowTerminatingError(BbErrors.FromException(ex, ex is Core.Api.ZduApiException { RequestUri: { } url } ? url : profile.Name));
                return;
            }

            if (result.PlanOnly)
            {
                WriteObject(result.Plan);
                return;
            }
            WriteVerbose(result.Report!.Summary);
            WriteObject(result.Report);
        }
    }
}
