using System;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Models
{
    /// <summary>A connection to one Bitbucket cluster (Connect-BbCluster's output). Holds no secret in any visible property.</summary>
    public sealed class BbConnection : IDisposable
    {
        internal BbConnection(IZduClient client, ZduClientOptions options)
        {
            Client = client;
            Uri = options.BaseUri;
            UserName = options.Credential.UserName;
            AuthenticationType = options.Credential.IsBearerToken ? "Bearer" : "Basic";
            SkipCertificateCheck = options.SkipCertificateCheck;
            TrustedCertificatePath = options.TrustedCertificatePath;
            ConnectedAt = DateTimeOffset.Now;
        }

        public Uri Uri { get; }
        public string? UserName { get; }
        public string AuthenticationType { get; }
        public bool SkipCertificateCheck { get; }
        /// <summary>The extra CA certificate file trusted for this server, if any.</summary>
        public string? TrustedCertificatePath { get; }
        public DateTimeOffset ConnectedAt { get; }
        /// <summary>The cluster state read when the connection was verified.</summary>
        public string? ClusterState { get; internal set; }
        public int NodeCount { get; internal set; }

        internal IZduClient Client { get; }

        /// <summary>Returned to the caller (-PassThru): a later Connect-BbCluster must not dispose it, the caller may still use it with -Connection.</summary>
        internal bool PassedToCaller { get; set; }

        public void Dispose() => Client.Dispose();

        public override string ToString() => Uri.ToString();
    }
}
