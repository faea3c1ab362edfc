using System;
using System.Management.Automation;
using System.Security;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;
using BitbucketZdu.Models;

namespace BitbucketZdu.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Connects to a Bitbucket Data Center cluster's rolling-upgrade API and makes it the default connection.</para>
    /// </summary>
    [Cmdlet(VerbsCommunications.Connect, "BbCluster", DefaultParameterSetName = CredentialSet, HelpUri = HelpLinks.CommandsBase + "Connect-BbCluster.md")]
    [OutputType(typeof(BbConnection))]
    public sealed class ConnectBbClusterCommand : BbCmdlet
    {
        private const string CredentialSet = "Credential";
        private const string TokenSet = "Token";

        /// <summary>Bitbucket's base URL, including its context path if it has one.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNull]
        public Uri Uri { get; set; } = null!;

        /// <summary>A system administrator's user name and password (Basic authentication).</summary>
        [Parameter(Mandatory = true, ParameterSetName = CredentialSet)]
        [Credential]
        [ValidateNotNull]
        public PSCredential Credential { get; set; } = null!;

        /// <summary>An HTTP access token. Bitbucket usually refuses tokens on /rest/zdu; prefer -Credential.</summary>
        [Parameter(Mandatory = true, ParameterSetName = TokenSet)]
        [ValidateNotNull]
        public SecureString Token { get; set; } = null!;

        /// <summary>Do not verify the server's TLS certificate. Unsafe: use only against a test server.</summary>
        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>A CA certificate file (PEM or DER) to trust for this server besides the system's store, e.g. an internal CA.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? TrustedCertificatePath { get; set; }

        /// <summary>An HTTP proxy between here and Bitbucket (default: the system's, HTTPS_PROXY/NO_PROXY).</summary>
        [Parameter]
        [ValidateNotNull]
        public Uri? Proxy { get; set; }

        /// <summary>The proxy's credential (a 407 from the proxy asks for it).</summary>
        [Parameter]
        [Credential]
        public PSCredential? ProxyCredential { get; set; }

        /// <summary>Seconds one HTTP request may take.</summary>
        [Parameter]
        [ValidateRange(1, 3600)]
        public int TimeoutSec { get; set; } = 30;

        /// <summary>Return the connection object.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            ZduClientOptions options;
            try
            {
                var credential = ParameterSetName == TokenSet
                    ? ZduCredential.Bearer(Token)
                    : ZduCredential.Basic(Credential.UserName, Credential.Password);
                options = new ZduClientOptions(Uri, credential)
                {
                    SkipCertificateCheck = SkipCertificateCheck,
                    TrustedCertificatePath = TrustedCertificateFile(TrustedCertificatePath),
                    RequestTimeout = TimeSpan.FromSeconds(TimeoutSec),
                    Proxy = Proxy,
                    ProxyCredential = ProxyCredential?.GetNetworkCredential(),
                };
                ThrowIfInvalidProxy(Proxy, "ConnectBbClusterInvalidProxy");
            }
            catch (ArgumentException ex)
            {
                // The target is the URL without user info: a password typed into the URL must not reach the error record.
                ThrowTerminatingError(new ErrorRecord(ex, "ConnectBbClusterInvalidUri", ErrorCategory.InvalidArgument, WithoutUserInfo(Uri)));
                return;
            }

            if (SkipCertificateCheck)
                WarnCertificateCheckOff(options.BaseUri.ToString(), "Anyone on the network path can read the administrator credentials.");

            ZduClient client;
            try
            {
                client = new ZduClient(options);
            }
            catch (ArgumentException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, "ConnectBbClusterInvalidCertificate", ErrorCategory.InvalidArgument, TrustedCertificatePath));
                return;
            }
            var connection = new BbConnection(client, options);
            try
            {
                var cluster = RunOrThrow(async (bridge, ct) =>
                {
                    using (ZduDiagnostics.ReportTo(bridge.Verbose))
                        return await client.GetClusterAsync(ct).ConfigureAwait(false);
                }, Uri);
                connection.ClusterState = cluster.StateText;
                connection.NodeCount = cluster.Nodes.Count;
                WriteVerbose($"Connected to {options.BaseUri}: cluster {cluster.StateText}, {cluster.Nodes.Count} node(s).");
            }
            catch
            {
                connection.Dispose();
                throw;
            }

            connection.PassedToCaller = PassThru;
            ConnectionStore.Set(connection);
            if (PassThru) WriteObject(connection);
        }

        private static string WithoutUserInfo(Uri uri)
        {
            if (!uri.IsAbsoluteUri || string.IsNullOrEmpty(uri.UserInfo)) return uri.OriginalString;
            return new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri.ToString();
        }
    }
}
