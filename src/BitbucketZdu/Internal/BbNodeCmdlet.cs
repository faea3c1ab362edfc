using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Hosting;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Nodes;

namespace BitbucketZdu.Internal
{
    /// <summary>How the module reaches a node given by -HostName.</summary>
    public enum BbNodeTransport
    {
        /// <summary>A PowerShell session over SSH (New-PSSession -HostName); PowerShell 7 must be on the node.</summary>
        PowerShell,
        /// <summary>The plain OpenSSH client and POSIX sh: Linux nodes without PowerShell.</summary>
        Ssh,
        /// <summary>A PowerShell session over WinRM (New-PSSession -ComputerName).</summary>
        WinRM,
    }

    /// <summary>
    /// Base of the node cmdlets: a node is an existing -Session, a -HostName reached over SSH (PowerShell session or
    /// plain OpenSSH, -Transport), or a -ComputerName reached over WinRM. Connection properties bind from the pipeline
    /// by name, and every result carries them on, so node cmdlets chain: Get-BbNodeInstallation | Stop-BbNode | ...
    /// </summary>
    public abstract class BbNodeCmdlet : BbCmdlet
    {
        protected const string HostNameSet = "HostName";
        protected const string ComputerNameSet = "ComputerName";
        protected const string SessionSet = "Session";

        /// <summary>The node's host name or address (SSH).</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        [Alias("IpAddress")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; } = "";

        /// <summary>A Windows node reached over WinRM.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ComputerNameSet)]
        [ValidateNotNullOrEmpty]
        public string ComputerName { get; set; } = "";

        /// <summary>An open PSSession to the node (WinRM or SSH transport); it stays open afterwards.</summary>
        [Parameter(Mandatory = true, ParameterSetName = SessionSet, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNull]
        public PSSession? Session { get; set; }

        /// <summary>With -HostName: PowerShell (a PSSession over SSH, default), Ssh (plain OpenSSH, no PowerShell on the node) or WinRM.</summary>
        [Parameter(ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        public BbNodeTransport Transport { get; set; } = BbNodeTransport.PowerShell;

        /// <summary>The SSH or WinRM port; 0 means the transport's default.</summary>
        [Parameter(ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        [Parameter(ParameterSetName = ComputerNameSet)]
        [ValidateRange(0, 65535)]
        public int Port { get; set; }

        /// <summary>The SSH user.</summary>
        [Parameter(ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        public string? UserName { get; set; }

        /// <summary>The SSH private key.</summary>
        [Parameter(ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        public string? KeyFilePath { get; set; }

        /// <summary>
        /// The account for the PowerShell session over WinRM to the node (the same name as Invoke-BbRollingUpgrade's);
        /// -Credential is the Bitbucket administrator on every cmdlet that has it. Default: the current identity.
        /// </summary>
        [Parameter(ParameterSetName = HostNameSet)]
        [Parameter(ParameterSetName = ComputerNameSet)]
        [Credential]
        public PSCredential? RemotingCredential { get; set; }

        /// <summary>WinRM over HTTPS.</summary>
        [Parameter(ParameterSetName = HostNameSet)]
        [Parameter(ParameterSetName = ComputerNameSet)]
        public SwitchParameter UseSSL { get; set; }

        /// <summary>SSH options (-o Name=Value), e.g. @{ UserKnownHostsFile = '/etc/bbzdu/known_hosts' }. Host keys are checked unless StrictHostKeyChecking says otherwise.</summary>
        [Parameter(ParameterSetName = HostNameSet, ValueFromPipelineByPropertyName = true)]
        public Hashtable? SshOption { get; set; }

        /// <summary>The node's Bitbucket install dir (default: where its service points).</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        public string? InstallDir { get; set; }

        /// <summary>The node for messages and error targets.</summary>
        protected string NodeName => ParameterSetName switch
        {
            SessionSet => Session!.ComputerName,
            ComputerNameSet => ComputerName,
            _ => HostName,
        };

        /// <summary>The ShouldProcess target: node and install dir.</summary>
        protected string NodeTarget => NodeName + (string.IsNullOrEmpty(InstallDir) ? "" : ":" + InstallDir);

        /// <summary>The node's connection, opened on the pipeline thread (a PSSession needs the caller's runspace).</summary>
        protected sealed class NodeConnection : IDisposable
        {
            private readonly PSSession? _opened;

            internal NodeConnection(INodeShell shell, PSSession? opened, PSObject? pipe)
            {
                Shell = shell;
                _opened = opened;
                PipeProperties = pipe;
            }

            public INodeShell Shell { get; }
            internal PSObject? PipeProperties { get; }

            /// <summary>Adds the connection properties to a result so the next node cmdlet binds them.</summary>
            public object Decorate(object result)
            {
                var ps = PSObject.AsPSObject(result);
                if (PipeProperties is null) return ps;
                foreach (var p in PipeProperties.Properties)
                    if (ps.Properties[p.Name] is null) ps.Properties.Add(new PSNoteProperty(p.Name, p.Value));
                return ps;
            }

            public void Dispose()
            {
                Shell.Dispose();
                if (_opened is not null)
                    ScriptBlock.Create("param($s) Remove-PSSession -Session $s -ErrorAction SilentlyContinue").Invoke(_opened);
            }
        }

        /// <summary>Opens the connection for the current record; a failure is a per-node error (false).</summary>
        protected bool TryConnect(out NodeConnection? connection)
        {
            connection = null;
            try
            {
                connection = Connect();
                return true;
            }
            catch (Exception ex) when (ex is BbException || ex is RuntimeException || ex is ArgumentException)
            {
                var bb = ex as BbException ?? new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError,
                    $"Could not open a session to {NodeName}: {ex.Message}", NodeName, ex);
                WriteError(BbErrors.FromException(bb, NodeName));
                return false;
            }
        }

        private NodeConnection Connect()
        {
            if (ParameterSetName == SessionSet)
                return new NodeConnection(Wait(PSSessionShell.CreateAsync(Session!, null, StopToken)), null, null);

            var transport = ParameterSetName == ComputerNameSet ? BbNodeTransport.WinRM : Transport;
            var pipe = new PSObject();
            pipe.Properties.Add(new PSNoteProperty("Transport", transport));
            if (Port != 0) pipe.Properties.Add(new PSNoteProperty("Port", Port));
            if (!string.IsNullOrEmpty(UserName)) pipe.Properties.Add(new PSNoteProperty("UserName", UserName));
            if (!string.IsNullOrEmpty(KeyFilePath)) pipe.Properties.Add(new PSNoteProperty("KeyFilePath", KeyFilePath));
            if (SshOption is not null) pipe.Properties.Add(new PSNoteProperty("SshOption", SshOption));

            if (transport == BbNodeTransport.Ssh)
            {
                var o = new SshShellOptions(NodeName) { Port = Port == 0 ? 22 : Port, UserName = UserName };
                if (!string.IsNullOrEmpty(KeyFilePath)) o.KeyFilePath = SessionState.Path.GetUnresolvedProviderPathFromPSPath(KeyFilePath);
                foreach (DictionaryEntry kv in SshOption ?? new Hashtable())
                {
                    var name = kv.Key.ToString();
                    var value = kv.Value?.ToString() ?? "";
                    if (name.Equals("UserKnownHostsFile", StringComparison.OrdinalIgnoreCase)) o.KnownHostsFile = value;
                    else if (name.Equals("StrictHostKeyChecking", StringComparison.OrdinalIgnoreCase)) o.StrictHostKeyChecking = value;
                    else if (name.Equals("ConnectTimeout", StringComparison.OrdinalIgnoreCase)) o.ConnectTimeout = TimeSpan.FromSeconds(int.Parse(value, System.Globalization.CultureInfo.InvariantCulture));
                    else o.Options[name] = value;
                }
                return new NodeConnection(new SshShell(o), null, pipe);
            }

            var p = new Hashtable { ["ErrorAction"] = "Stop" };
            var sessionHost = Upgrade.NodeShellOpener.SessionHost.Current();
            if (transport == BbNodeTransport.WinRM)
            {
                Upgrade.NodeShellOpener.RequireWSMan(sessionHost, $"-ComputerName {NodeName}", NodeName);
                p["ComputerName"] = NodeName;
                if (RemotingCredential is not null) p["Credential"] = RemotingCredential;
                // 5986 is WinRM's HTTPS port: speaking HTTP to it only fails.
                if (UseSSL || Port == Core.Upgrade.Adapters.RemotingTarget.WinRMHttpsPort) p["UseSSL"] = true;
            }
            else
            {
                Upgrade.NodeShellOpener.RequireSshRemoting(sessionHost, $"-HostName {NodeName} -Transport PowerShell", NodeName);
                p["HostName"] = NodeName;
                if (!string.IsNullOrEmpty(UserName)) p["UserName"] = UserName;
                if (!string.IsNullOrEmpty(KeyFilePath)) p["KeyFilePath"] = SessionState.Path.GetUnresolvedProviderPathFromPSPath(KeyFilePath);
                if (SshOption is not null) p["Options"] = SshOption;
            }
            if (Port != 0) p["Port"] = Port;
            WriteVerbose($"Opening a PowerShell session to {NodeName} over {(transport == BbNodeTransport.WinRM ? "WinRM" : "SSH")}");
            var session = ScriptBlock.Create("param($p) New-PSSession @p").Invoke(p).Select(o => o.BaseObject).OfType<PSSession>().FirstOrDefault()
                ?? throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError, $"New-PSSession to {NodeName} returned no session.", NodeName);
            try
            {
                return new NodeConnection(Wait(PSSessionShell.CreateAsync(session, null, StopToken)), session, pipe);
            }
            catch
            {
                ScriptBlock.Create("param($s) Remove-PSSession -Session $s -ErrorAction SilentlyContinue").Invoke(session);
                throw;
            }
        }

        private static T Wait<T>(Task<T> task) => Task.Run(() => task).GetAwaiter().GetResult();

        /// <summary>Step options for this run.</summary>
        protected virtual NodeStepOptions StepOptions => new NodeStepOptions();

        /// <summary>Runs one node's step with output, progress and errors on the pipeline; a failure is a per-node error.</summary>
        /// <param name="action">The ShouldProcess action; null for a step that changes nothing.</param>
        protected void RunStep(string? action, Func<NodeSteps, IOperationHost, CancellationToken, Task<object?>> step)
        {
            if (action is not null && !ShouldProcess(NodeTarget, action)) return;
            if (!TryConnect(out var connection)) return;
            using (connection)
            {
                RunOrWriteError(async (bridge, ct) =>
                {
                    var steps = new NodeSteps(connection!.Shell, StepOptions, bridge);
                    var result = await step(steps, bridge, ct).ConfigureAwait(false);
                    if (result is not null) bridge.WriteObject(connection.Decorate(result));
                }, NodeName);
            }
        }
    }
}
