using BitbucketZdu.Completion;
using System;
using System.Collections;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.Upgrade.Journal;
using BitbucketZdu.Core.Upgrade.Ports;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Core.Upgrade.Runner;
using BitbucketZdu.Upgrade;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// Base of the cmdlets that work from a cluster profile: -ProfilePath, credentials, journal folder; reads the
    /// profile (Import-PowerShellDataFile) and builds the ports through <see cref="UpgradePortsFactory"/>.
    /// </summary>
    public abstract class BbUpgradeCmdlet : BbClusterCmdlet, IDisposable
    {
        private NodeShellOpener? _shellOpener;

        private ClusterProfile? _profile;
        private IJournalStore? _journal;

        /// <summary>After Ctrl+C: where the run stands now and the command that goes on, from the journal the run wrote.</summary>
        protected override System.Collections.Generic.IEnumerable<string> NotesAfterStop()
        {
            if (_profile is null || _journal is null) yield break;
            var entries = _journal.ReadAsync(_profile.Name, System.Threading.CancellationToken.None).GetAwaiter().GetResult();
            var runs = RunStatusReader.Read(_profile.Name, entries, _profile.Nodes.Select(n => n.Name).ToList(), (_, _) => false, _profile.Source, _journal.Describe(_profile.Name));
            if (runs.Count == 0 || runs[runs.Count - 1].State == nameof(RunState.Completed)) yield break;
            var last = runs[runs.Count - 1];
            // The summary ends with the command that goes on: the pointer to the status comes in brackets, so nothing
            // runs into that command when it is copied.
            yield return $"Stopped. {last.Summary} (Get-BbRollingUpgrade -ProfilePath {_profile.Source ?? "<profile>"} shows it again.)";
        }

        /// <summary>Closes the PowerShell sessions this run opened to the nodes.</summary>
        public void Dispose() => _shellOpener?.Dispose();

        /// <summary>The cluster profile (.psd1) written by New-BbClusterProfile.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [Alias("Path", "FullName")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(ProfilePathCompleter))]
        public string ProfilePath { get; set; } = null!;

        /// <summary>A Bitbucket system administrator (Basic authentication). Default: the current connection's.</summary>
        [Parameter]
        [Credential]
        public PSCredential? Credential { get; set; }

        /// <summary>Do not verify TLS certificates of the cluster and node URLs. Unsafe: test servers only.</summary>
        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>A CA certificate file (PEM or DER) trusted for the cluster URL, each node's URL and /status (an internal CA); overrides the profile's Tls.TrustedCertificatePath.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? TrustedCertificatePath { get; set; }

        /// <summary>An HTTP proxy for every call to Bitbucket (default: the system's, HTTPS_PROXY/NO_PROXY); overrides the profile's Proxy.Uri.</summary>
        [Parameter]
        [ValidateNotNull]
        public Uri? Proxy { get; set; }

        /// <summary>The proxy's credential.</summary>
        [Parameter]
        [Credential]
        public PSCredential? ProxyCredential { get; set; }

        /// <summary>The account for PowerShell sessions over WinRM to the nodes (profile Remoting 'winrm://host' or a host name). Default: the current identity.</summary>
        [Parameter]
        [Credential]
        public PSCredential? RemotingCredential { get; set; }

        /// <summary>The journal folder; overrides the profile's JournalPath (and its Journal container).</summary>
        [Parameter]
        public string? JournalPath { get; set; }

        /// <summary>The Azure Storage container holding the journal and its lock (a blob lease), e.g. https://account.blob.core.windows.net/bitbucket-zdu; overrides the profile's Journal.Uri.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? JournalUri { get; set; }

        /// <summary>How to authenticate to the journal container: ManagedIdentity, SharedKey, Sas or Token; overrides the profile's Journal.Authentication. Default: SharedKey with -JournalCredential, else ManagedIdentity.</summary>
        [Parameter]
        public JournalAuthentication? JournalAuthentication { get; set; }

        /// <summary>The journal container's secret: SharedKey = account name and access key; Sas = a SAS token as the password (user name unused); Token = a bearer token as the password.</summary>
        [Parameter]
        [Credential]
        public PSCredential? JournalCredential { get; set; }

        /// <summary>Allow an http:// journal container on a host that is not loopback (a storage emulator on a test network).</summary>
        [Parameter]
        public SwitchParameter JournalAllowHttp { get; set; }

        /// <summary>
        /// Credentials of the profile's load balancers by name: @{ lb1 = (Get-Credential) }. What the credential means depends on
        /// the kind (NGINX Plus, Apache: HTTP Basic; Azure: the service principal's application id and client secret, or a token).
        /// Wins over the profile's CredentialAsset (an Azure Automation credential asset, read with Get-AutomationPSCredential).
        /// </summary>
        [Parameter]
        public Hashtable? LoadBalancerCredential { get; set; }

        /// <summary>Reads and validates the profile; a terminating error with the first issue's ErrorId and every place otherwise.</summary>
        protected ClusterProfile LoadProfile()
        {
            var path = ResolveProfilePath();
            var data = ReadData(path);
            try
            {
                return _profile = ClusterProfileReader.Read(data, path);
            }
            catch (ProfileException ex)
            {
                ThrowTerminatingError(BbErrors.FromException(ex, path));
                throw;
            }
        }

        /// <summary>-ProfilePath as a file system path; a terminating error when it is no file (missing, or a folder).</summary>
        protected string ResolveProfilePath()
        {
            var path = GetUnresolvedProviderPathFromPSPath(ProfilePath);
            if (Directory.Exists(path))
                ThrowError("ProfileIsDirectory", ErrorCategory.InvalidArgument,
                    $"The cluster profile '{path}' is a folder, not a file. Give the path of the profile's .psd1 file; New-BbClusterProfile -Path '{System.IO.Path.Combine(path, "cluster.psd1")}' writes a template.", path);
            if (!File.Exists(path))
                ThrowError("ProfileNotFound", ErrorCategory.ObjectNotFound, $"The cluster profile '{path}' does not exist. New-BbClusterProfile -Path '{path}' writes a template.", path);
            return path;
        }

        /// <summary>
        /// The profile file as a hashtable, read as data only (as Import-PowerShellDataFile does, but with the line of the
        /// problem): a syntax error, a file that is not one hashtable, or any code (a subexpression, a command, a variable)
        /// is a terminating error, and nothing in the file runs.
        /// </summary>
        protected IDictionary ReadData(string path)
        {
            var ast = Parser.ParseFile(path, out _, out var errors);
            if (errors.Length > 0)
            {
                var e = errors[0];
                ThrowError("ProfileUnreadable", ErrorCategory.ParserError,
                    $"The cluster profile '{path}' is not valid PowerShell data: line {e.Extent.StartLineNumber}, column {e.Extent.StartColumnNumber}: {e.Message.TrimEnd('.')}"
                    + (errors.Length > 1 ? $" ({errors.Length - 1} more error{(errors.Length == 2 ? "" : "s")} after it)" : "")
                    + ". Compare it with a template from New-BbClusterProfile.", path);
            }
            var statements = ast.EndBlock?.Statements;
            var hashtable = statements is { Count: 1 } && ast.BeginBlock is null && ast.ProcessBlock is null && ast.ParamBlock is null
                ? ((statements[0] as PipelineAst)?.GetPureExpression() as HashtableAst) : null;
            if (hashtable is null)
                ThrowError("ProfileUnreadable", ErrorCategory.InvalidData,
                    $"The cluster profile '{path}' is not a PowerShell data file: it must hold exactly one hashtable @{{ ... }} (New-BbClusterProfile writes a template).", path);
            try
            {
                if (hashtable!.SafeGetValue() is IDictionary d) return d;
            }
            catch (InvalidOperationException)
            {
                var code = hashtable!.Find(a => a is SubExpressionAst || a is CommandAst || a is InvokeMemberExpressionAst || a is ScriptBlockExpressionAst
                    || (a is VariableExpressionAst v && !IsConstant(v)), true);
                var where = code is null ? "" : $", but line {code.Extent.StartLineNumber} has code: {Shorten(code.Extent.Text)}";
                ThrowError("ProfileNotData", ErrorCategory.InvalidData,
                    $"The cluster profile '{path}' must be data only{where}. Use literal values only: 'strings', numbers, $true, $false, $null, @{{ ... }} and @( ... ). Nothing in the file was run.", path);
            }
            ThrowError("ProfileUnreadable", ErrorCategory.InvalidData, $"The cluster profile '{path}' is not a PowerShell data file (@{{ ... }}).", path);
            return null!;
        }

        private static bool IsConstant(VariableExpressionAst v) =>
            v.VariablePath.IsUnqualified && (v.VariablePath.UserPath.Equals("true", StringComparison.OrdinalIgnoreCase)
                || v.VariablePath.UserPath.Equals("false", StringComparison.OrdinalIgnoreCase) || v.VariablePath.UserPath.Equals("null", StringComparison.OrdinalIgnoreCase));

        private static string Shorten(string text)
        {
            var line = text.Split('\n')[0].Trim();
            return line.Length > 80 ? line.Substring(0, 77) + "..." : line;
        }

        protected UpgradePorts CreatePorts(ClusterProfile profile)
        {
            var options = ConnectionOptions(profile);
            try
            {
                var ports = UpgradePortsFactory.Current.Create(profile, options);
                WriteVerbose($"Journal of cluster '{profile.Name}': {ports.Journal.Describe(profile.Name)}");
                _journal = ports.Journal;
                return ports;
            }
            catch (BbException ex)
            {
                ThrowTerminatingError(BbErrors.FromException(ex, profile.Name));
                throw;
            }
        }

        /// <summary>What the ports are built from: the parameters over the profile and the current connection; warns about unsafe choices.</summary>
        protected UpgradeConnectionOptions ConnectionOptions(ClusterProfile profile)
        {
            var connection = Connection ?? ConnectionStore.Current;
            var options = new UpgradeConnectionOptions
            {
                Credential = Credential is null ? null : ZduCredential.Basic(Credential.UserName, Credential.Password),
                SkipCertificateCheck = SkipCertificateCheck || (Credential is null && connection?.SkipCertificateCheck == true),
                JournalPath = JournalPath is null ? null : GetUnresolvedProviderPathFromPSPath(JournalPath),
                OpenShell = (_shellOpener ??= new NodeShellOpener(RemotingCredential)).OpenAsync,
                JournalUri = JournalUri,
                JournalAuthentication = JournalAuthentication,
                JournalAccountName = JournalCredential?.UserName,
                JournalSecret = JournalCredential?.Password,
                JournalAllowHttp = JournalAllowHttp,
                LoadBalancerCredentials = ResolveLoadBalancerCredentials(profile),
                TrustedCertificatePath = TrustedCertificateFile(TrustedCertificatePath),
                Proxy = Proxy,
                ProxyCredential = ProxyCredential?.GetNetworkCredential(),
            };
            if (options.TrustedCertificatePath is { } ca && !System.IO.File.Exists(ca))
                ThrowError(GetType().Name.Replace("Command", "") + "InvalidCertificate", ErrorCategory.ObjectNotFound,
                    $"The trusted certificate file '{ca}' does not exist. Give the internal CA's certificate (PEM or DER) with -TrustedCertificatePath.", TrustedCertificatePath);
            ThrowIfInvalidProxy(Proxy, GetType().Name.Replace("Command", "") + "InvalidProxy");
            if (Credential is null && connection is not null)
            {
                if (!SameBase(connection.Uri, profile.BaseUrl))
                    WriteWarning($"The current connection is to {connection.Uri} but the profile's BaseUrl is {profile.BaseUrl}; using the connection's credentials for the profile's URLs.");
                else
                    options.ClusterClient = connection.Client;
            }
            if (options.Credential is null && connection is not null && options.ClusterClient is null && connection.Client is ZduClient zc)
                options.Credential = zc.Options.Credential;
            if (SkipCertificateCheck)
                WriteWarning("TLS certificate verification is OFF for the cluster URL, every node URL and every /status probe: anyone on the network path can read the administrator credentials. Use this only against a test server; for an internal CA pass -TrustedCertificatePath instead.");
            foreach (var warning in NodeShellOpener.CertificateCheckWarnings(profile.Nodes)) WriteWarning(warning);
            return options;
        }

        /// <summary>
        /// -LoadBalancerCredential by load-balancer name, then the profile's CredentialAsset entries through
        /// Get-AutomationPSCredential (Azure Automation; a terminating error where that command does not exist).
        /// </summary>
        private System.Collections.Generic.IReadOnlyDictionary<string, Core.LoadBalancers.LoadBalancerCredential> ResolveLoadBalancerCredentials(ClusterProfile profile)
        {
            var result = new System.Collections.Generic.Dictionary<string, Core.LoadBalancers.LoadBalancerCredential>(StringComparer.OrdinalIgnoreCase);
            if (LoadBalancerCredential is not null)
                foreach (DictionaryEntry e in LoadBalancerCredential)
                {
                    var name = e.Key?.ToString() ?? "";
                    if (!profile.LoadBalancers.Any(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase)))
                        ThrowError("UpgradeUnknownLoadBalancerCredential", ErrorCategory.InvalidArgument,
                            $"-LoadBalancerCredential names '{name}', which is no load balancer of the profile; it has {string.Join(", ", profile.LoadBalancers.Select(l => l.Name))}.", name);
                    if (((e.Value as PSObject)?.BaseObject ?? e.Value) is not PSCredential c)
                        ThrowError("UpgradeInvalidLoadBalancerCredential", ErrorCategory.InvalidArgument,
                            $"-LoadBalancerCredential '{name}' must be a PSCredential (Get-Credential, or New-Object PSCredential(user, secure string)).", name);
                    else result[name] = new Core.LoadBalancers.LoadBalancerCredential(c.UserName, c.Password);
                }
            foreach (var lb in profile.LoadBalancers)
            {
                if (result.ContainsKey(lb.Name) || !lb.Settings.TryGetValue("CredentialAsset", out var asset) || string.IsNullOrWhiteSpace(asset)) continue;
                if (InvokeCommand.GetCommand("Get-AutomationPSCredential", CommandTypes.All) is null)
                    ThrowError("LoadBalancerCredentialAssetUnavailable", ErrorCategory.ObjectNotFound,
                        $"{lb.Place}.Settings.CredentialAsset names the Automation credential asset '{asset}', but Get-AutomationPSCredential does not exist here (it exists in Azure Automation runbooks). Outside a runbook pass -LoadBalancerCredential @{{ '{lb.Name}' = <PSCredential> }}.", lb.Name);
                System.Collections.ObjectModel.Collection<PSObject> found;
                try
                {
                    found = InvokeCommand.InvokeScript(false, ScriptBlock.Create("param($n) Get-AutomationPSCredential -Name $n"), null, asset!.Trim());
                }
                catch (RuntimeException ex)
                {
                    ThrowError("LoadBalancerCredentialAssetUnavailable", ErrorCategory.ObjectNotFound,
                        $"{lb.Place}.Settings.CredentialAsset: Get-AutomationPSCredential -Name '{asset}' failed: {ex.Message}", lb.Name);
                    throw;
                }
                if (found.Select(o => o?.BaseObject).OfType<PSCredential>().FirstOrDefault() is not PSCredential cred)
                    ThrowError("LoadBalancerCredentialAssetUnavailable", ErrorCategory.ObjectNotFound,
                        $"{lb.Place}.Settings.CredentialAsset: Get-AutomationPSCredential -Name '{asset}' returned no credential. Check the asset's name in the Automation account.", lb.Name);
                else result[lb.Name] = new Core.LoadBalancers.LoadBalancerCredential(cred.UserName, cred.Password);
            }
            return result;
        }

        /// <summary>
        /// Maps -Hook (@{ NodeUpgraded = { param($e) ... }; '*' = { ... } }) to the engine's hook. Script blocks run on
        /// the pipeline thread with the event as $_ and as the first argument; any error in a block fails the phase.
        /// </summary>
        protected UpgradeHook? MapHook(Hashtable? hooks, PipelineBridge bridge)
        {
            if (hooks is null || hooks.Count == 0) return null;
            var map = new System.Collections.Generic.Dictionary<string, ScriptBlock>(StringComparer.OrdinalIgnoreCase);
            foreach (DictionaryEntry e in hooks)
            {
                var key = e.Key?.ToString() ?? "";
                if (key != "*" && !Enum.GetNames(typeof(UpgradePhase)).Any(n => string.Equals(n, key, StringComparison.OrdinalIgnoreCase)))
                    ThrowError("UpgradeInvalidHook", ErrorCategory.InvalidArgument,
                        $"-Hook has an unknown phase '{key}'; use '*' or one of {string.Join(", ", Enum.GetNames(typeof(UpgradePhase)))}.", key);
                var block = (e.Value as PSObject)?.BaseObject as ScriptBlock ?? e.Value as ScriptBlock;
                if (block is null)
                    ThrowError("UpgradeInvalidHook", ErrorCategory.InvalidArgument, $"-Hook '{key}' must be a script block.", key);
                map[key] = block!;
            }
            return (evt, ct) =>
            {
                foreach (var key in new[] { evt.Phase.ToString(), "*" })
                {
                    if (!map.TryGetValue(key, out var block)) continue;
                    bridge.Ask(() =>
                    {
                        // A hook is a gate: any error in it (a .NET exception, a failed command's Write-Error) fails the
                        // phase, so a failed smoke test never lets the run go on to put a node back or finalize.
                        block.InvokeWithContext(null, new System.Collections.Generic.List<PSVariable>
                        {
                            new PSVariable("_", evt),
                            new PSVariable("ErrorActionPreference", ActionPreference.Stop),
                        }, evt);
                        return true;
                    });
                }
                return Task.CompletedTask;
            };
        }

        /// <summary>True under -WhatIf (or $WhatIfPreference).</summary>
        protected bool IsWhatIf
        {
            get
            {
                if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w)) return w is SwitchParameter sw ? sw.IsPresent : LanguagePrimitives.IsTrue(w);
                return LanguagePrimitives.IsTrue(SessionState.PSVariable.GetValue("WhatIfPreference"));
            }
        }

        /// <summary>
        /// One question for the whole operation, so -Confirm prompts once and not per step. True under -WhatIf (the engine
        /// then prints every step through <see cref="StepHost"/>) and after a "Yes"; false when the user said no.
        /// </summary>
        protected bool ConfirmOnce(string target, string action) => IsWhatIf || ShouldProcess(target, action);

        /// <summary>The engine's host after <see cref="ConfirmOnce"/>: steps print under -WhatIf, are approved otherwise.</summary>
        protected Core.Hosting.IOperationHost StepHost(PipelineBridge bridge) => IsWhatIf ? bridge : new ApprovedSteps(bridge);

        private sealed class ApprovedSteps : Core.Hosting.IOperationHost, Core.Hosting.IInformationHost
        {
            private readonly Core.Hosting.IOperationHost _inner;
            public ApprovedSteps(Core.Hosting.IOperationHost inner) => _inner = inner;
            public void Information(string message, string[]? tags = null) => Core.Hosting.OperationHostExtensions.Inform(_inner, message);
            public void Verbose(string message) => _inner.Verbose(message);
            public void Debug(string message) => _inner.Debug(message);
            public void Warning(string message) => _inner.Warning(message);
            public void Progress(Core.Hosting.OperationProgress progress) => _inner.Progress(progress);
            public bool ShouldProcess(string target, string action) => true;
        }

        private static bool SameBase(Uri a, Uri b) =>
            Uri.Compare(a, b, UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0
            || string.Equals(a.GetLeftPart(UriPartial.Path).TrimEnd('/'), b.GetLeftPart(UriPartial.Path).TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
    }
}
