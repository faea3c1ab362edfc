using System;
using System.Globalization;
using System.Text.RegularExpressions;
using BitbucketZdu.Core.Nodes;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Adapters
{
    /// <summary>How the profile's <c>Remoting</c> of a node reaches it.</summary>
    public enum RemotingKind
    {
        /// <summary><c>local</c>: this machine.</summary>
        Local,
        /// <summary><c>ssh://[user@]host[:port]</c>: the plain OpenSSH client and POSIX sh (Linux nodes without PowerShell).</summary>
        Ssh,
        /// <summary><c>pwsh+ssh://[user@]host[:port]</c>: a PowerShell session over SSH (New-PSSession -HostName).</summary>
        PowerShellSsh,
        /// <summary><c>winrm://[user@]host[:port]</c> or a bare host name: a PowerShell session over WinRM (New-PSSession -ComputerName; port 5986 means HTTPS).</summary>
        WinRM,
    }

    /// <summary>A parsed <c>Remoting</c> value.</summary>
    public sealed class RemotingTarget
    {
        private static readonly Regex Url = new Regex(@"^(?<scheme>ssh|pwsh\+ssh|winrm)://(?:(?<user>[^@/:]+)@)?(?<host>[^:/@]+)(?::(?<port>\d{1,5}))?/?$", RegexOptions.IgnoreCase);
        private static readonly Regex BareHost = new Regex(@"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$");

        private RemotingTarget(RemotingKind kind, string host, string? user, int? port)
        {
            Kind = kind;
            Host = host;
            UserName = user;
            Port = port;
        }

        public RemotingKind Kind { get; }
        public string Host { get; }
        public string? UserName { get; }
        public int? Port { get; }

        /// <summary>The identity and known_hosts file of ssh:// and pwsh+ssh:// targets (from the profile's Ssh).</summary>
        public SshSettings Ssh { get; private set; } = SshSettings.None;

        /// <summary>The WinRM settings of winrm:// targets (from the profile's WinRM).</summary>
        public WinRMSettings WinRM { get; private set; } = WinRMSettings.None;

        /// <summary>The port WinRM listens on over HTTPS; a winrm:// target on it speaks HTTPS without being told.</summary>
        public const int WinRMHttpsPort = 5986;

        /// <summary>Whether a winrm:// session uses HTTPS: the profile's UseSSL, else port 5986.</summary>
        public bool UseSsl => Kind == RemotingKind.WinRM && (WinRM.UseSsl ?? Port == WinRMHttpsPort);

        public static RemotingTarget Parse(NodeProfile node)
        {
            var target = TryParse(node.RemotingTarget) ?? throw Invalid(node.Place, node.RemotingTarget.Trim());
            target.Ssh = node.Ssh;
            target.WinRM = node.WinRM;
            return target;
        }

        /// <summary>The target, or null when <paramref name="text"/> is not one (the profile reader refuses it then).</summary>
        internal static RemotingTarget? TryParse(string text)
        {
            text = text.Trim();
            if (string.Equals(text, "local", StringComparison.OrdinalIgnoreCase) || string.Equals(text, "localhost", StringComparison.OrdinalIgnoreCase))
                return new RemotingTarget(RemotingKind.Local, "localhost", null, null);
            var m = Url.Match(text);
            if (m.Success)
            {
                var kind = m.Groups["scheme"].Value.ToLowerInvariant() switch
                {
                    "ssh" => RemotingKind.Ssh,
                    "pwsh+ssh" => RemotingKind.PowerShellSsh,
                    _ => RemotingKind.WinRM,
                };
                int? port = m.Groups["port"].Success ? int.Parse(m.Groups["port"].Value, CultureInfo.InvariantCulture) : null;
                if (port is < 1 or > 65535) return null;
                return new RemotingTarget(kind, m.Groups["host"].Value, m.Groups["user"].Success ? m.Groups["user"].Value : null, port);
            }
            return BareHost.IsMatch(text) ? new RemotingTarget(RemotingKind.WinRM, text, null, null) : null;
        }

        /// <summary>A shell for the targets that need no PowerShell session (local and plain SSH).</summary>
        public INodeShell? OpenDirect() => Kind switch
        {
            RemotingKind.Local => new LocalShell(),
            RemotingKind.Ssh => new SshShell(new SshShellOptions(Host)
            {
                UserName = UserName, Port = Port ?? 22, KeyFilePath = Ssh.KeyFilePath, KnownHostsFile = Ssh.KnownHostsFile,
            }),
            _ => null,
        };

        /// <summary>What a valid Remoting looks like (for messages).</summary>
        internal static string Expected(string text) =>
            $"'{text}' is not a node target. Use 'local', 'ssh://user@host[:port]' (plain OpenSSH), 'pwsh+ssh://user@host[:port]' (PowerShell over SSH) or 'winrm://[user@]host[:port]' / a host name (PowerShell over WinRM; 5986 is HTTPS).";

        private static BbException Invalid(string place, string text) =>
            new BbException("ProfileInvalidRemoting", BbErrorCategory.InvalidData, $"{place}.Remoting: {Expected(text)}", place);

        public override string ToString() => $"{Kind} {(UserName is null ? "" : UserName + "@")}{Host}{(Port is null ? "" : ":" + Port)}";
    }
}
