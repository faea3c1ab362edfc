using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>This machine as an <see cref="INodeShell"/>: /bin/sh on Linux and macOS, PowerShell on Windows.</summary>
    public sealed class LocalShell : INodeShell
    {
        public string HostName => "localhost";

        public ShellPlatform Platform { get; } =
            RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? ShellPlatform.Windows : ShellPlatform.Posix;

        public async Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default,
            IReadOnlyDictionary<string, string>? environment = null)
        {
            var psi = Platform == ShellPlatform.Posix
                ? new ProcessStartInfo("/bin/sh", "-c " + QuoteForArgv(command))
                : new ProcessStartInfo("powershell.exe", "-NoProfile -NonInteractive -Command " + QuoteForArgv(command));
            psi.UseShellExecute = false;
            psi.RedirectStandardOutput = true;
            psi.RedirectStandardError = true;
            psi.RedirectStandardInput = true;
            if (environment is not null)
                foreach (var kv in environment) psi.Environment[kv.Key] = kv.Value;

            using var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            var exited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
            process.Exited += (_, _) => exited.TrySetResult(true);
            process.Start();
            process.StandardInput.Close();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeoutCts.CancelAfter(timeout);
            using (timeoutCts.Token.Register(() => exited.TrySetCanceled()))
            {
                try
                {
                    await exited.Task.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    try { process.Kill(); } catch (InvalidOperationException) { }
                    cancellationToken.ThrowIfCancellationRequested();
                    throw new TimeoutException($"The command on {HostName} did not finish within {timeout.TotalSeconds:0.#} s.");
                }
            }
            process.WaitForExit(); // drains the redirected streams
            lock (stdout) lock (stderr)
                return new ShellResult(process.ExitCode, stdout.ToString(), stderr.ToString());
        }

        public Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default) =>
            Task.FromResult(File.Exists(path) || Directory.Exists(path));

        public Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default) =>
            Task.FromResult(File.ReadAllText(path));

        public Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default)
        {
            var temp = path + ".bbzdu-tmp";
            File.WriteAllText(temp, content);
            if (File.Exists(path))
                File.Replace(temp, path, null);
            else
                File.Move(temp, path);
            return Task.CompletedTask;
        }

        public Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default)
        {
            File.Copy(localPath, remotePath, overwrite: false);
            return Task.CompletedTask;
        }

        /// <summary>Quotes one argument by the argv rules .NET uses to split ProcessStartInfo.Arguments (netstandard2.0 has no ArgumentList).</summary>
        internal static string QuoteForArgv(string s)
        {
            var sb = new StringBuilder("\"");
            var backslashes = 0;
            foreach (var c in s)
            {
                if (c == '\\') { backslashes++; continue; }
                if (c == '"') { sb.Append('\\', backslashes * 2 + 1); }
                else { sb.Append('\\', backslashes); }
                backslashes = 0;
                sb.Append(c);
            }
            sb.Append('\\', backslashes * 2);
            return sb.Append('"').ToString();
        }

        public void Dispose() { }
    }
}
