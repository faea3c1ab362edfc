using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>The operating system family of a shell's host: it decides script syntax and path rules.</summary>
    public enum ShellPlatform
    {
        Posix,
        Windows,
    }

    /// <summary>The outcome of one command.</summary>
    public sealed class ShellResult
    {
        public ShellResult(int exitCode, string standardOutput, string standardError)
        {
            ExitCode = exitCode;
            StandardOutput = standardOutput;
            StandardError = standardError;
        }

        public int ExitCode { get; }
        public string StandardOutput { get; }
        public string StandardError { get; }
        public bool Succeeded => ExitCode == 0;
    }

    /// <summary>
    /// A host where commands run and files live: this machine, a node over plain SSH, or a node over a PowerShell
    /// session. Node steps and the NGINX provider are written against this, so one step logic serves every transport.
    /// Commands are POSIX sh on <see cref="ShellPlatform.Posix"/> and PowerShell on <see cref="ShellPlatform.Windows"/>.
    /// </summary>
    public interface INodeShell : IDisposable
    {
        /// <summary>The host as the user named it (for messages).</summary>
        string HostName { get; }

        ShellPlatform Platform { get; }

        /// <summary>Runs a command; a non-zero exit is returned, not thrown. Throws on transport failure or timeout.</summary>
        Task<ShellResult> RunAsync(string command, TimeSpan timeout, CancellationToken cancellationToken = default,
            IReadOnlyDictionary<string, string>? environment = null);

        Task<bool> PathExistsAsync(string path, CancellationToken cancellationToken = default);

        Task<string> ReadTextAsync(string path, CancellationToken cancellationToken = default);

        /// <summary>Writes a file atomically (a temp file beside it, then a rename), so a crash never leaves half a file.</summary>
        Task WriteTextAsync(string path, string content, CancellationToken cancellationToken = default);

        /// <summary>Copies a local file to the host.</summary>
        Task CopyFileToAsync(string localPath, string remotePath, CancellationToken cancellationToken = default);
    }
}
