using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Models;

namespace BitbucketZdu.Internal
{
    /// <summary>A cmdlet that talks to a cluster: -Connection overrides the default set by Connect-BbCluster.</summary>
    public abstract class BbClusterCmdlet : BbCmdlet
    {
        /// <summary>The connection to use instead of the default one.</summary>
        [Parameter]
        [ValidateNotNull]
        public BbConnection? Connection { get; set; }

        /// <summary>The client of -Connection or the default connection; a terminating error when there is neither.</summary>
        protected IZduClient Client
        {
            get
            {
                var connection = Connection ?? ConnectionStore.Current;
                if (connection is null)
                {
                    ThrowError("BbNotConnected", ErrorCategory.ConnectionError,
                        "Not connected to a Bitbucket cluster. Run Connect-BbCluster -Uri <base URL> -Credential <sysadmin> first, or pass -Connection.");
                }
                return connection!.Client;
            }
        }

        /// <summary>
        /// Runs API work with the client's retry/reconciliation messages going to this cmdlet's verbose stream; an
        /// engine failure becomes a terminating error.
        /// </summary>
        protected T RunApi<T>(Func<IZduClient, PipelineBridge, CancellationToken, Task<T>> work)
        {
            var client = Client;
            return RunOrThrow(async (bridge, ct) =>
            {
                using (ZduDiagnostics.ReportTo(bridge.Verbose))
                    return await work(client, bridge, ct).ConfigureAwait(false);
            }, client.BaseUri);
        }

        /// <summary>GET /rest/zdu/cluster.</summary>
        protected ZduCluster ReadCluster()
        {
            WriteVerbose($"Reading the cluster's rolling-upgrade state from {Client.BaseUri}rest/zdu/cluster.");
            var cluster = RunApi((client, _, ct) => client.GetClusterAsync(ct));
            WriteVerbose(Core.Rules.ZduStateRules.DescribeCluster(cluster));
            return cluster;
        }
    }
}
