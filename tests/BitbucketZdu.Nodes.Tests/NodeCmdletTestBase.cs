using System.Management.Automation;
using Xunit.Abstractions;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>What the cmdlet test classes share: a runspace with the module, and the node connection as a splat ($p).</summary>
public abstract class NodeCmdletTestBase : IDisposable
{
    protected NodeCmdletTestBase(SshServer ssh, ITestOutputHelper output)
    {
        Ssh = ssh;
        Output = output;
    }

    protected SshServer Ssh { get; }
    protected ITestOutputHelper Output { get; }
    protected PowerShellHost Ps { get; } = new();

    public void Dispose() => Ps.Dispose();

    /// <summary>$p (HostName, Port, UserName, KeyFilePath, Transport, SshOption with the pinned known_hosts), $old and $archive.</summary>
    protected Dictionary<string, object?> Vars(NodeLab lab, string transport, string? archive = null) => new()
    {
        ["p"] = new System.Collections.Hashtable
        {
            ["HostName"] = Ssh.HostName, ["Port"] = Ssh.Port, ["UserName"] = Ssh.UserName, ["KeyFilePath"] = Ssh.KeyFile, ["Transport"] = transport,
            ["SshOption"] = new System.Collections.Hashtable { ["UserKnownHostsFile"] = Ssh.KnownHostsFile },
        },
        ["old"] = lab.OldDir,
        ["archive"] = archive,
    };

    protected static T Base<T>(PSObject o) => Assert.IsType<T>(o.BaseObject);
}
