using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>How to reach a node with the plain OpenSSH client.</summary>
    public sealed class SshShellOptions
    {
        public SshShellOptions(string hostName)
        {
            HostName = string.IsNullOrWhiteSpace(hostName) ? throw new ArgumentException("A host name is required.", nameof(hostName)) : hostName;
        }

        public string HostName { get; }
        public int Port { get; set; } = 22;
        public string? UserName { get; set; }

        /// <summary>The private key (ssh -i). Without it ssh uses its agent and default keys.</summary>
        public string? KeyFilePath { get; set; }

        /// <summary>A known_hosts file to use instead of ~/.ssh/known_hosts.</summary>
        public string? KnownHostsFile { get; set; }

        /// <summary>yes (default: an unknown or changed host key is refused), accept-new, or no (only when told).</summary>
        public string StrictHostKeyChecking { get; set; } = "yes";

        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Further -o options (Name=value), e.g. ProxyJump.</summary>
        public IDictionary<string, string> Options { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        /// <summary>The ssh client binary.</summary>
        public string SshPath { get; set; } = "ssh";

        /// <summary>Reuse one connection for every command (OpenSSH ControlMaster; not on Windows, whose client lacks it).</summary>
        public bool Multiplex { get; set; } = !System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Windows);
    }

    /// <summary>
    /// A Linux node over the plain OpenSSH client (no PowerShell needed on the node): each call runs one
    /// <c>ssh -T -o BatchMode=yes … /bin/sh -c '…'</c>; file data travels on stdin (atomic: temp file, then mv).
    /// </summary>
    public sealed class SshShell : INodeShell
    {
        private readonly SshShellOptions _options;
        private readonly SemaphoreSlim _masterGate = new SemaphoreSlim(1, 1);
        private string? _controlDir;
        private bool _masterTried;
        private volatile bool _masterLost;

        public SshShell(SshShellOptions options)
        {
            _options = options ?? throw new ArgumentNullException(nameof(options));
        }

        public string HostName => _options.HostName;
        public ShellPlatform Platform => ShellPlatform.Posix;

        /// <summary>The ssh arguments before the remote command (for diagnostics and tests).</summary>
        internal IReadOnlyList<string> BuildArguments(string? remoteCommand, params string[] extra)
        {
            var args = new List<string> { "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=" + Math.Max(1, (int)Math.Ceiling(_options.ConnectTimeout.TotalSeconds)),
                "-o", "StrictHostKeyChecking=" + _options.StrictHostKeyChecking, "-o", "LogLevel=ERROR", "-p", _options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            if (!string.IsNullOrEmpty(_options.KeyFilePath)) { args.Add("-i"); args.Add(_options.KeyFilePath!); args.Add("-o"); args.Add("IdentitiesOnly=yes"); }
            if (!string.IsNullOrEmpty(_options.KnownHostsFile)) { args.Add("-o"); args.Add("UserKnownHostsFile=" + _options.KnownHostsFile); }
            foreach (var kv in _options.Options) { args.Add("-o"); args.Add(kv.Key + "=" + kv.Value); }
            if (_controlDir is not null) { args.Add("-o"); args.Add("ControlPath=" + _controlDir + "/cm"); }
            args.AddRange(extra);
            if (!string.IsNullOrEmpty(_options.UserName)) { args.Add("-l"); args.Add(_options.UserName!); }
            args.Add(_options.HostName);
            if (remoteCommand is not null)
            {
                args.Add("--");
                args.Add(remoteCommand);
            }
            return args;
        }

        public Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default,
            IReadOnlyDictionary<string, string>? environment = null) =>
            RunSshAsync(ShellQuote.WithEnvironment(ShellPlatform.Posix, command, environment), null, timeout, cancellationToken);

        public async Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default)
        {
            var r = await RunSshAsync("[ -e " + ShellQuote.Sh(path) + " ] || [ -L " + ShellQuote.Sh(path) + " ]", null, DefaultTimeout, cancellationToken).ConfigureAwait(false);
            return r.Succeeded;
        }

        public async Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default)
        {
            var r = await RunSshAsync("cat -- " + ShellQuote.Sh(path), null, DefaultTimeout, cancellationToken).ConfigureAwait(false);
            if (!r.Succeeded)
                throw new FileNotFoundException($"Cannot read {path} on {HostName}: {r.StandardError.Trim()}", path);
            return r.StandardOutput;
        }

        public async Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default)
        {
            var bytes = new UTF8Encoding(false).GetBytes(content);
            using var data = new MemoryStream(bytes);
            await PutAsync(data, path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        }

        public async Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default)
        {
            using var data = File.OpenRead(localPath);
            // Generous: a real distribution is ~700 MB; the caller's token bounds it too.
            await PutAsync(data, remotePath, TimeSpan.FromHours(2), cancellationToken).ConfigureAwait(false);
        }

        private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

        /// <summary>Streams <paramref name="data"/> into a temp file beside <paramref name="path"/>, keeps the old file's mode, then renames.</summary>
        private async Task PutAsync(Stream data, string path, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var p = ShellQuote.Sh(path);
            var t = ShellQuote.Sh(path + ".bbzdu-tmp");
            var script = $"cat > {t} || exit 1; if [ -e {p} ]; then m=$(stat -c %a {p} 2>/dev/null || stat -f %Lp {p} 2>/dev/null) && chmod \"$m\" {t}; fi; mv -f {t} {p}";
            var r = await RunSshAsync(script, data, timeout, cancellationToken).ConfigureAwait(false);
            if (!r.Succeeded)
            {
                await RunSshAsync("rm -f " + t, null, DefaultTimeout, CancellationToken.None).ConfigureAwait(false);
                throw new IOException($"Cannot write {path} on {HostName}: {r.StandardError.Trim()}");
            }
        }

        private static string Argv(IEnumerable<string> args)
        {
            var sb = new StringBuilder();
            foreach (var a in args) sb.Append(sb.Length == 0 ? "" : " ").Append(LocalShell.QuoteForArgv(a));
            return sb.ToString();
        }

        /// <summary>
        /// Starts one background master connection (ssh -f -N, ControlPersist) that later commands ride on, saving a
        /// handshake per command. Its stdio is not redirected: a persisting master would otherwise hold our pipes open.
        /// When it cannot start, commands connect one by one (and report the connection error themselves). When the
        /// master's connection drops (network, sshd restart), the next command starts a new one: without it every later
        /// command would pay a full handshake, many times longer, while a node is out of rotation.
        /// </summary>
        private async Task EnsureMasterAsync(CancellationToken cancellationToken)
        {
            if (!_options.Multiplex || (_masterTried && !MasterLost)) return;
            await _masterGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_masterTried && !MasterLost) return;
                if (_controlDir is string old)
                {
                    _controlDir = null;
                    try { Directory.Delete(old, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                }
                _masterLost = false;
                _masterTried = true;
                var dir = Path.Combine(Path.GetTempPath(), "bbzdu-ssh-" + Guid.NewGuid().ToString("N").Substring(0, 10));
                Directory.CreateDirectory(dir);
                _controlDir = dir;
                var psi = new ProcessStartInfo(_options.SshPath, Argv(BuildArguments(null, "-f", "-N", "-n", "-E", Path.Combine(dir, "master.log"), "-o", "ControlMaster=yes", "-o", "ControlPersist=120")))
                {
                    UseShellExecute = false,
                };
                using var master = Process.Start(psi)!;
                var exited = await Task.Run(() => master.WaitForExit((int)_options.ConnectTimeout.TotalMilliseconds + 5000), cancellationToken).ConfigureAwait(false);
                if (!exited || master.ExitCode != 0 || !File.Exists(Path.Combine(dir, "cm")))
                {
                    if (!exited) try { master.Kill(); } catch (InvalidOperationException) { }
                    _controlDir = null;
                    try { Directory.Delete(dir, true); } catch (IOException) { }
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                _controlDir = null;
            }
            finally
            {
                _masterGate.Release();
            }
        }

        /// <summary>The master is gone: its control socket vanished (it exited) or refused a command (it was killed).</summary>
        private bool MasterLost => _masterLost || (_controlDir is string dir && !File.Exists(Path.Combine(dir, "cm")));

        private async Task<ShellResult> RunSshAsync(string remoteScript, Stream? stdin, TimeSpan timeout, CancellationToken cancellationToken)
        {
            await EnsureMasterAsync(cancellationToken).ConfigureAwait(false);
            var args = BuildArguments("/bin/sh -c " + ShellQuote.Sh(remoteScript), _controlDir is null ? Array.Empty<string>() : new[] { "-o", "ControlMaster=no" });
            var psi = new ProcessStartInfo(_options.SshPath, Argv(args))
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
            try
            {
                process.Start();
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new BbException("NodeSshClientMissing", BbErrorCategory.NotInstalled,
                    $"The OpenSSH client '{_options.SshPath}' could not be started ({ex.Message}). Install OpenSSH (Debian: apt-get install openssh-client; Windows: the OpenSSH.Client capability).", HostName, ex);
            }
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeoutCts.CancelAfter(timeout);
            try
            {
                var feed = FeedAsync(process, stdin, timeoutCts.Token);
                var exited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                process.Exited += (_, _) => exited.TrySetResult(true);
                if (process.HasExited) exited.TrySetResult(true);
                using (timeoutCts.Token.Register(() => exited.TrySetCanceled()))
                    await exited.Task.ConfigureAwait(false);
                await feed.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try { process.Kill(); } catch (InvalidOperationException) { }
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"The command over SSH on {HostName} did not finish within {timeout.TotalSeconds:0.#} s.");
            }
            process.WaitForExit();
            var stdout = await stdoutTask.ConfigureAwait(false);
            var stderr = await stderrTask.ConfigureAwait(false);
            // ssh fell back to a connection of its own because the master did not answer: start a new master next time.
            if (stderr.IndexOf("Control socket connect", StringComparison.Ordinal) >= 0) _masterLost = true;
            if (process.ExitCode == 255)
                throw new BbException("NodeConnectionFailed", BbErrorCategory.ConnectionError,
                    $"SSH to {(_options.UserName is null ? "" : _options.UserName + "@")}{HostName}:{_options.Port} failed: {stderr.Trim()} " +
                    "Check the host name, port, user, key (-KeyFilePath) and that the host key is in known_hosts.", HostName);
            return new ShellResult(process.ExitCode, stdout, stderr);
        }

        private static async Task FeedAsync(Process process, Stream? stdin, CancellationToken cancellationToken)
        {
            try
            {
                if (stdin is not null)
                    await stdin.CopyToAsync(process.StandardInput.BaseStream, 81920, cancellationToken).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // ssh exited early (connection refused, remote error): its exit code and stderr tell why.
            }
        }

        /// <summary>Ends the master connection (ssh -O exit) and removes its control socket dir.</summary>
        public void Dispose()
        {
            var dir = _controlDir;
            if (dir is null) return;
            try
            {
                var psi = new ProcessStartInfo(_options.SshPath, Argv(BuildArguments(null, "-O", "exit")))
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                using var p = Process.Start(psi)!;
                p.WaitForExit(5000);
            }
            catch (System.ComponentModel.Win32Exception) { }
            finally
            {
                _controlDir = null;
                _masterGate.Dispose();
            }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
