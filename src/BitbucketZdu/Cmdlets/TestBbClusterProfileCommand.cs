using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using BitbucketZdu.Core.Upgrade.Preflight;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Validates a cluster profile and probes everything it names (cluster API, every node's own view, load-balancer members, remoting, disk, archive checksum) without changing anything.</para>
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "BbClusterProfile", HelpUri = HelpLinks.CommandsBase + "Test-BbClusterProfile.md")]
    [OutputType(typeof(PreflightFinding), typeof(bool))]
    public sealed class TestBbClusterProfileCommand : BbUpgradeCmdlet
    {
        /// <summary>Only validate the file; do not contact the cluster, load balancers or nodes.</summary>
        [Parameter]
        public SwitchParameter SkipProbe { get; set; }

        /// <summary>Return $true when nothing is an error, instead of the findings.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void ProcessRecord()
        {
            var path = ResolveProfilePath();
            var issues = new List<ProfileIssue>();
            var profile = ClusterProfileReader.TryRead(ReadData(path), path, issues);
            var findings = issues.Select(i => new PreflightFinding(FindingSeverity.Error, i.ErrorId, null, i.Place, i.Message)).ToList();
            if (profile is not null && !SkipProbe)
            {
                using var ports = CreatePorts(profile);
                var result = RunOrThrow((bridge, ct) => new PreflightCheck(ports, bridge).RunAsync(profile, false, ct), path);
                findings.AddRange(result.Findings);
            }
            else if (profile is not null)
            {
                findings.Add(new PreflightFinding(FindingSeverity.Info, "ProfileValid", profile.Name, null,
                    $"The profile is valid: {profile.Nodes.Count} nodes, {profile.LoadBalancers.Count} load balancer(s), target {profile.TargetVersion}. Nothing was probed (-SkipProbe)."));
            }
            if (Quiet)
            {
                WriteObject(findings.All(f => f.Severity != FindingSeverity.Error));
                return;
            }
            foreach (var f in findings) WriteObject(f);
        }
    }
}
