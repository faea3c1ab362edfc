using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Remoting;
using System.Management.Automation.Runspaces;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Nodes;

namespace BitbucketZdu.Nodes
{
    /// <summary>
    /// A node behind a PowerShell session (WinRM or SSH transport). File work is done with .NET inside the session on
    /// any OS. Commands follow the node's platform: on a Linux node the POSIX step commands run through /bin/sh inside
    /// the session (so both SSH paths share one step logic); on a Windows node they are PowerShell.
    /// </summary>
    public sealed class PSSessionShell : INodeShell
    {
        private const int ChunkBytes = 4 * 1024 * 1024;
        private readonly PSSession _session;
        private readonly SemaphoreSlim _gate = new SemaphoreSlim(1, 1);
        private readonly Action<PSSession>? _onDispose;

        private PSSessionShell(PSSession session, string hostName, ShellPlatform platform, Action<PSSession>? onDispose)
        {
            _session = session;
            HostName = hostName;
            Platform = platform;
            _onDispose = onDispose;
        }

        public string HostName { get; }
        public ShellPlatform Platform { get; }
        public PSSession Session => _session;

        /// <summary>Wraps an open session; asks the node which platform it is.</summary>
        /// <param name="onDispose">Called on dispose (e.g. to remove a session the module opened), or at once when asking the node fails; null leaves the session open.</param>
        public static async Task<PSSessionShell> CreateAsync(PSSession session, Action<PSSession>? onDispose, CancellationToken cancellationToken)
        {
            if (session.Runspace.RunspaceStateInfo.State != RunspaceState.Opened)
                throw new BbException("NodeSessionNotOpen", BbErrorCategory.ConnectionError,
                    $"The PSSession to {session.ComputerName} is {session.Runspace.RunspaceStateInfo.State}; open a new one (New-PSSession).", session.ComputerName);
            IList<PSObject> os;
            using (var probe = new PSSessionShell(session, session.ComputerName, ShellPlatform.Windows, null))
            {
                try
                {
                    os = await probe.InvokeAsync(ProbePlatformScript, null, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    // No shell comes of it, so nobody would ever dispose one: hand the session back to its owner now
                    // (the module closes a session it opened; a caller's own session stays open).
                    onDispose?.Invoke(session);
                    throw;
                }
            }
            var platform = os.Select(o => o?.ToString()).Any(s => s == "Unix" || s == "MacOSX") ? ShellPlatform.Posix : ShellPlatform.Windows;
            return new PSSessionShell(session, session.ComputerName, platform, onDispose);
        }

        /// <summary>Runs a POSIX command through /bin/sh inside the session; the result is its exit code and both streams.</summary>
        internal const string PosixWrapper =
            "param($c) $o = New-Object System.Text.StringBuilder; $e = New-Object System.Text.StringBuilder; " +
            "$r = $c | & /bin/sh 2>&1; $code = $LASTEXITCODE; " +
            "foreach ($x in $r) { if ($x -is [System.Management.Automation.ErrorRecord]) { [void]$e.AppendLine($x.Exception.Message) } else { [void]$o.AppendLine([string]$x) } }; " +
            "@{ ExitCode = [int]$code; Out = $o.ToString(); Err = $e.ToString() }";

        /// <summary>
        /// Runs a PowerShell command inside the session. The command fails (exit code 1 unless a native command set
        /// another) on a terminating error and also on any error record it writes: a Move-Item or Get-Item that fails
        /// without terminating is a failed step, never a success with text on the error stream.
        /// </summary>
        internal const string WindowsWrapper =
            "param($c) $o = New-Object System.Text.StringBuilder; $e = New-Object System.Text.StringBuilder; $code = 0; $failed = $false; $global:LASTEXITCODE = 0; " +
            "try { & ([scriptblock]::Create($c)) 2>&1 | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { $failed = $true; [void]$e.AppendLine($_.ToString()) } else { [void]$o.AppendLine(($_ | Out-String).TrimEnd()) } }; if ($global:LASTEXITCODE) { $code = $global:LASTEXITCODE } } " +
            "catch { [void]$e.AppendLine($_.ToString()); $failed = $true }; if ($failed -and $code -eq 0) { $code = 1 }; @{ ExitCode = [int]$code; Out = $o.ToString(); Err = $e.ToString() }";

        internal const string PathExistsScript = "param($p) [IO.File]::Exists($p) -or [IO.Directory]::Exists($p)";
        internal const string ReadTextScript = "param($p) [IO.File]::ReadAllText($p)";
        internal const string ProbePlatformScript = "[string][Environment]::OSVersion.Platform";

        /// <summary>Keeps the replaced file's Unix mode (scripts stay executable) and renames the temp file over it.</summary>
        private const string KeepModeAndMove =
            "if ([IO.File]::Exists($p) -and $PSVersionTable.PSVersion.Major -ge 7 -and -not $IsWindows) { try { [IO.File]::SetUnixFileMode($tmp, [IO.File]::GetUnixFileMode($p)) } catch { } }; " +
            "if ([IO.File]::Exists($p)) { [IO.File]::Replace($tmp, $p, [NullString]::Value) } else { [IO.File]::Move($tmp, $p) }";

        internal const string WriteTextScript =
            "param($p, $t) $tmp = $p + '.bbzdu-tmp'; [IO.File]::WriteAllText($tmp, $t, (New-Object System.Text.UTF8Encoding $false)); " + KeepModeAndMove;

        internal const string CopyChunkScript =
            "param($p, [byte[]]$b, $first) $tmp = $p + '.bbzdu-tmp'; $mode = if ($first) { [IO.FileMode]::Create } else { [IO.FileMode]::Append }; " +
            "$fs = [IO.File]::Open($tmp, $mode, [IO.FileAccess]::Write); try { $fs.Write($b, 0, $b.Length) } finally { $fs.Dispose() }";

        internal const string CopyFinishScript = "param($p) $tmp = $p + '.bbzdu-tmp'; " + KeepModeAndMove;

        /// <summary>Every script this shell sends to a node (the parser test reads this list).</summary>
        internal static readonly IReadOnlyList<string> Scripts = new[]
        {
            PosixWrapper, WindowsWrapper, PathExistsScript, ReadTextScript, ProbePlatformScript, WriteTextScript, CopyChunkScript, CopyFinishScript,
        };

        public async Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default,
            IReadOnlyDictionary<string, string>? environment = null)
        {
            command = ShellQuote.WithEnvironment(Platform, command, environment);
            // The command travels as an argument, never spliced into script text.
            var script = Platform == ShellPlatform.Posix ? PosixWrapper : WindowsWrapper;
            var output = await InvokeAsync(script, new object[] { command }, timeout, cancellationToken).ConfigureAwait(false);
            var table = output.Select(o => o?.BaseObject).OfType<System.Collections.IDictionary>().LastOrDefault()
                ?? throw new BbException("NodeCommandFailed", BbErrorCategory.ProtocolError, $"The PSSession to {HostName} returned no result for a command.", HostName);
            return new ShellResult(Convert.ToInt32(table["ExitCode"], System.Globalization.CultureInfo.InvariantCulture),
                table["Out"]?.ToString()?.Replace("\r\n", "\n") ?? "", table["Err"]?.ToString() ?? "");
        }

        public async Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default)
        {
            var r = await InvokeAsync(PathExistsScript, new object[] { path }, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            return r.Count > 0 && r[0]?.BaseObject is bool b && b;
        }

        public async Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default)
        {
            var r = await InvokeAsync(ReadTextScript, new object[] { path }, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            return r.Count > 0 ? r[0]?.BaseObject as string ?? "" : throw new FileNotFoundException($"Cannot read {path} on {HostName}.", path);
        }

        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default) =>
            InvokeAsync(WriteTextScript,
                new object[] { path, content }, TimeSpan.FromSeconds(60), cancellationToken);

        /// <summary>Copies in 4 MB chunks (byte[] arguments serialize as base64 over remoting), to a temp name, then renames.</summary>
        public async Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default)
        {
            using var source = File.OpenRead(localPath);
            var buffer = new byte[ChunkBytes];
            var first = true;
            while (true)
            {
                var n = await source.ReadAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false);
                if (n == 0 && !first) break;
                var chunk = new byte[n];
                Buffer.BlockCopy(buffer, 0, chunk, 0, n);
                await InvokeAsync(CopyChunkScript,
                    new object[] { remotePath, chunk, first }, TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(false);
                first = false;
                if (n == 0) break;
            }
            await InvokeAsync(CopyFinishScript, new object[] { remotePath }, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        }

        private async Task<IList<PSObject>> InvokeAsync(string script, object[]? arguments, TimeSpan timeout, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                using var ps = PowerShell.Create();
                ps.Runspace = _session.Runspace;
                ps.AddScript(script);
                foreach (var a in arguments ?? Array.Empty<object>()) ps.AddArgument(a);
                var invocation = Task.Factory.FromAsync(ps.BeginInvoke(), ps.EndInvoke);
                using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var finished = await Task.WhenAny(invocation, Task.Delay(timeout, timeoutCts.Token)).ConfigureAwait(false);
                if (finished != invocation)
                {
                    try { ps.Stop(); } catch (InvalidOperationException) { }
                    _ = invocation.ContinueWith(t => t.Exception, TaskScheduler.Default); // observe
                    cancellationToken.ThrowIfCancellationRequested();
                    throw new TimeoutException($"The command in the PSSession to {HostName} did not finish within {timeout.TotalSeconds:0.#} s.");
                }
                timeoutCts.Cancel();
                PSDataCollection<PSObject> output;
                try
                {
                    output = await invocation.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is PSRemotingTransportException || ex is RemoteException || ex is RuntimeException || ex is InvalidRunspaceStateException)
                {
                    throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError,
                        $"The PSSession to {HostName} failed: {ex.Message}", HostName, ex);
                }
                if (ps.HadErrors && ps.Streams.Error.Count > 0)
                    throw new IOException($"The PSSession to {HostName} reported: {ps.Streams.Error[0]}");
                return output.ToList();
            }
            finally
            {
                _gate.Release();
            }
        }

        public void Dispose()
        {
            _onDispose?.Invoke(_session);
            _gate.Dispose();
        }
    }
}
