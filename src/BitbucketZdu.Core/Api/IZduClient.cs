using System;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Api
{
    /// <summary>Every call of Bitbucket's rolling-upgrade REST API (/rest/zdu).</summary>
    public interface IZduClient : IDisposable
    {
        Uri BaseUri { get; }

        /// <summary>GET /rest/zdu/cluster.</summary>
        Task<ZduCluster> GetClusterAsync(CancellationToken cancellationToken = default);

        /// <summary>GET /rest/zdu/state: the cluster state and the node that answered.</summary>
        Task<ZduStateResponse> GetStateAsync(CancellationToken cancellationToken = default);

        /// <summary>GET /rest/zdu/nodes/{id}.</summary>
        Task<ZduNode> GetNodeAsync(string nodeId, CancellationToken cancellationToken = default);

        /// <summary>POST /rest/zdu/start: enable upgrade mode (STABLE only).</summary>
        Task<ZduCluster> StartAsync(CancellationToken cancellationToken = default);

        /// <summary>POST /rest/zdu/cancel: disable upgrade mode (READY_TO_UPGRADE only).</summary>
        Task<ZduCluster> CancelAsync(CancellationToken cancellationToken = default);

        /// <summary>POST /rest/zdu/approve: finalize (READY_TO_RUN_UPGRADE_TASKS only).</summary>
        Task<ZduCluster> ApproveAsync(CancellationToken cancellationToken = default);

        /// <summary>POST /rest/zdu/retryUpgrade (UPGRADE_TASKS_FAILED only; newer servers).</summary>
        Task<ZduCluster> RetryUpgradeAsync(CancellationToken cancellationToken = default);
    }
}
