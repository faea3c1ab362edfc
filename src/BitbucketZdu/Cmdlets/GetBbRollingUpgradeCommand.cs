using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Plan;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Shows where the last rolling upgrade of a cluster stands (running, interrupted, halted, paused, completed), each node's step, the node left out of rotation and the exact next command; -History lists every recorded run.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BbRollingUpgrade", HelpUri = HelpLinks.CommandsBase + "Get-BbRollingUpgrade.md")]
    [OutputType(typeof(RollingUpgradeStatus))]
    public sealed class GetBbRollingUpgradeCommand : BbUpgradeCmdlet
    {
        /// <summary>Every run recorded in the journal, oldest first, instead of the last one only (read from the journal alone: no probe).</summary>
        [Parameter]
        public SwitchParameter History { get; set; }

        /// <summary>Read the journal only: do not ask the cluster API and the load balancers what they show now (no credential needed).</summary>
        [Parameter]
        public SwitchParameter SkipProbe { get; set; }

        protected override void ProcessRecord()
        {
            var profile = LoadProfile();
            UpgradePorts? ports = null;
            IJournalStore journal;
            var probe = !SkipProbe && !History;
            if (probe)
            {
                ports = CreatePorts(profile);
                journal = ports.Journal;
            }
            else
            {
                try
                {
                    journal = JournalStoreFactory.Create(profile, ConnectionOptions(profile));
                }
                catch (BbException ex)
                {
                    ThrowTerminatingError(BbErrors.FromException(ex, profile.Name));
                    return;
                }
            }
            try
            {
                var where = journal.Describe(profile.Name);
                var runs = RunOrThrow(async (bridge, ct) =>
                {
                    var entries = await journal.ReadAsync(profile.Name, ct).ConfigureAwait(false);
                    var all = RunStatusReader.Read(profile.Name, entries, profile.Nodes.Select(n => n.Name).ToList(), IsAlive, profile.Source, where);
                    if (ports is not null && all.Count > 0)
                    {
                        var last = all[all.Count - 1];
                        Core.Api.ZduCluster? cluster = null;
                        try
                        {
                            cluster = await ports.Cluster.GetClusterAsync(ct).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is BbException || ex is System.Net.Http.HttpRequestException || ex is TimeoutException)
                        {
                            bridge.Warning($"Could not read the cluster's state ({ex.Message}); showing what the journal recorded.");
                        }
                        var rotation = new Dictionary<string, RotationState>(StringComparer.OrdinalIgnoreCase);
                        foreach (var node in profile.Nodes.Where(n => last.Nodes.Any(s => string.Equals(s.Name, n.Name, StringComparison.OrdinalIgnoreCase))))
                        {
                            try
                            {
                                rotation[node.Name] = await ports.Rotation.GetStateAsync(node, ct).ConfigureAwait(false);
                            }
                            catch (Exception ex) when (!(ex is OperationCanceledException))
                            {
                                bridge.Warning($"Could not read the rotation of node {node.Name} ({ex.Message}).");
                            }
                        }
                        RunStatusReader.AddProbe(last, cluster, rotation, name => profile.FindNode(name) is { } p && cluster is not null ? NodeMatcher.Find(cluster.Nodes, p) : null);
                    }
                    return all;
                }, profile.Name);
                if (runs.Count == 0)
                {
                    WriteError(new ErrorRecord(new BbException("RollingUpgradeNotFound", BbErrorCategory.ObjectNotFound,
                            $"No run of cluster '{profile.Name}' is recorded in the journal {where}. Invoke-BbRollingUpgrade -ProfilePath {profile.Source ?? "<profile>"} starts one; "
                            + "if runs used another journal, give it with -JournalPath or -JournalUri.", profile.Name),
                        "RollingUpgradeNotFound", ErrorCategory.ObjectNotFound, profile.Name));
                    return;
                }
                if (History)
                    foreach (var run in runs) WriteObject(run);
                else
                    WriteObject(runs[runs.Count - 1]);
            }
            finally
            {
                ports?.Dispose();
                if (ports is null) (journal as IDisposable)?.Dispose();
            }
        }

        /// <summary>Whether the process that wrote a run still runs; null (cannot tell) for another host.</summary>
        private static bool? IsAlive(string? host, int? pid)
        {
            if (host is null || pid is null || !string.Equals(host, Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return null;
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid.Value);
                return !p.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }
    }
}
