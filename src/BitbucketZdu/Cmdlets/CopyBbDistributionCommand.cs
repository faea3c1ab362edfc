using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Internal;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Pre-stages a Bitbucket distribution on nodes, in parallel: copies the archive (or has each node download it), verifies its SHA-256 and extracts it into a new dir next to the current install.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Copy, "BbDistribution", DefaultParameterSetName = HostNameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.CommandsBase + "Copy-BbDistribution.md")]
    [OutputType(typeof(NodeStepResult))]
    public sealed class CopyBbDistributionCommand : BbNodeCmdlet
    {
        private readonly List<(NodeConnection Connection, string Node, string? InstallDir)> _nodes = new List<(NodeConnection, string, string?)>();
        private string? _localPath;

        /// <summary>The archive on this machine: atlassian-bitbucket-X.Y.Z.tar.gz or .zip (its .sha256 beside it is used unless -Sha256 is given).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        /// <summary>Have each node download the archive from this URL (curl or wget; Invoke-WebRequest on Windows). TLS is verified.</summary>
        [Parameter]
        public Uri? Uri { get; set; }

        /// <summary>The expected SHA-256 (hex). Default: the .sha256 file beside -Path or at -Uri + '.sha256'.</summary>
        [Parameter]
        [ValidatePattern("^[0-9a-fA-F]{64}$")]
        public string? Sha256 { get; set; }

        /// <summary>Free space to keep on the node's disk on top of what the archive and its extraction need (bytes; e.g. 2GB).</summary>
        [Parameter]
        [ValidateRange(0L, long.MaxValue)]
        public long MinimumFreeSpace { get; set; } = 512L * 1024 * 1024;

        /// <summary>How many nodes are pre-staged at once.</summary>
        [Parameter]
        [ValidateRange(1, 64)]
        public int ThrottleLimit { get; set; } = 4;

        protected override void BeginProcessing()
        {
            base.BeginProcessing();
            if ((Path is null) == (Uri is null))
                ThrowError("CopyBbDistributionSourceMissing", ErrorCategory.InvalidArgument, "Give the archive as either -Path <file> or -Uri <url> (exactly one).");
            if (Path is not null)
            {
                _localPath = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
                if (!File.Exists(_localPath))
                    ThrowError("CopyBbDistributionArchiveNotFound", ErrorCategory.ObjectNotFound, $"The archive {_localPath} does not exist.", _localPath);
            }
            if (Uri is not null && Uri.Scheme != Uri.UriSchemeHttps && Uri.Scheme != Uri.UriSchemeHttp)
                ThrowError("CopyBbDistributionInvalidUri", ErrorCategory.InvalidArgument, $"-Uri must be http or https, not '{Uri}'.", Uri);
        }

        protected override void ProcessRecord()
        {
            var name = System.IO.Path.GetFileName(_localPath ?? Uri!.AbsolutePath);
            if (!ShouldProcess(NodeTarget, $"Pre-stage {name} next to the current install dir")) return;
            if (TryConnect(out var connection)) _nodes.Add((connection!, NodeName, InstallDir));
        }

        protected override void EndProcessing()
        {
            try
            {
                if (_nodes.Count == 0) return;
                var distribution = new NodeDistribution { LocalPath = _localPath, Uri = Uri, Sha256 = Sha256?.ToLowerInvariant() };
                var options = new NodeStepOptions { MinimumFreeBytes = MinimumFreeSpace };
                Run(async (bridge, ct) =>
                {
                    using var throttle = new SemaphoreSlim(ThrottleLimit);
                    await Task.WhenAll(_nodes.Select(async n =>
                    {
                        await throttle.WaitAsync(ct).ConfigureAwait(false);
                        try
                        {
                            var steps = new NodeSteps(n.Connection.Shell, options, bridge);
                            var installation = await steps.DiscoverAsync(n.InstallDir, ct).ConfigureAwait(false);
                            var result = await steps.PreStageAsync(installation, distribution, ct).ConfigureAwait(false);
                            bridge.WriteObject(n.Connection.Decorate(result));
                        }
                        catch (Exception ex) when (!(ex is OperationCanceledException && ct.IsCancellationRequested))
                        {
                            bridge.WriteError(BbErrors.FromException(ex, n.Node));
                        }
                        finally
                        {
                            throttle.Release();
                        }
                    })).ConfigureAwait(false);
                });
            }
            finally
            {
                foreach (var n in _nodes) n.Connection.Dispose();
                _nodes.Clear();
            }
        }
    }
}
