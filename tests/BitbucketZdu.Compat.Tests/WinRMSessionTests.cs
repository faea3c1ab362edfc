using System.Collections;
using System.Management.Automation;
using System.Security;
using BitbucketZdu.Core;
using BitbucketZdu.Core.Upgrade.Adapters;
using BitbucketZdu.Core.Upgrade.Profile;
using BitbucketZdu.Upgrade;

namespace BitbucketZdu.Compat.Tests;

/// <summary>What New-PSSession (and New-PSSessionOption) would get for a node, built without WSMan.</summary>
public sealed class WinRMSessionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bbzdu winrm " + Guid.NewGuid().ToString("N")[..8]);

    public WinRMSessionTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly NodeShellOpener.SessionHost Windows74 = new() { IsWindows = true, PowerShellVersion = new Version(7, 4, 6), HasWSMan = true };
    private static readonly NodeShellOpener.SessionHost Desktop51 = new() { IsWindows = true, IsDesktop = true, PowerShellVersion = new Version(5, 1, 17763), HasWSMan = true };
    private static readonly NodeShellOpener.SessionHost Linux76 = new() { IsWindows = false, PowerShellVersion = new Version(7, 6, 0), HasWSMan = false };

    private static PSCredential Cred(string user)
    {
        var s = new SecureString();
        foreach (var c in Canary.Password) s.AppendChar(c);
        return new PSCredential(user, s);
    }

    private Hashtable ProfileData(Hashtable? clusterWinRM, Hashtable? nodeWinRM, string remoting)
    {
        var archive = Path.Combine(_dir, "atlassian-bitbucket-8.19.4.zip");
        File.WriteAllText(archive, "x");
        Hashtable Node(int i, Hashtable? w)
        {
            var n = new Hashtable { ["Name"] = "node-" + i, ["Url"] = $"http://10.0.0.{i}:7990/", ["Remoting"] = i == 1 ? remoting : "winrm://bb2.corp.example", ["InstallRoot"] = @"C:\Program Files\Atlassian\Bitbucket", ["Service"] = "WindowsService" };
            if (w is not null) n["WinRM"] = w;
            return n;
        }
        var data = new Hashtable
        {
            ["Name"] = "prod", ["BaseUrl"] = "https://bitbucket.example.com/", ["TargetVersion"] = "8.19.4",
            ["Archive"] = new Hashtable { ["Path"] = archive, ["Sha256"] = new string('a', 64) },
            ["Nodes"] = new object[] { Node(1, nodeWinRM), Node(2, null) },
        };
        if (clusterWinRM is not null) data["WinRM"] = clusterWinRM;
        return data;
    }

    private (Hashtable Session, Hashtable Option) Build(string remoting, Hashtable? clusterWinRM = null, Hashtable? nodeWinRM = null, PSCredential? cred = null, NodeShellOpener.SessionHost? host = null)
    {
        var profile = ClusterProfileReader.Read(ProfileData(clusterWinRM, nodeWinRM, remoting));
        var node = profile.Nodes[0];
        return NodeShellOpener.SessionParameters(RemotingTarget.Parse(node), node, cred, host ?? Windows74);
    }

    [Fact]
    public void Port_5986_means_HTTPS_and_the_profile_settings_reach_New_PSSession()
    {
        var (p, o) = Build("winrm://bb1.corp.example:5986", nodeWinRM: new Hashtable { ["Authentication"] = "kerberos", ["ConfigurationName"] = "BitbucketOps" });
        Assert.Equal("bb1.corp.example", p["ComputerName"]);
        Assert.Equal(5986, p["Port"]);
        Assert.Equal(true, p["UseSSL"]);
        Assert.Equal("Kerberos", p["Authentication"]);
        Assert.Equal("BitbucketOps", p["ConfigurationName"]);
        Assert.False(p.ContainsKey("Credential"));
        Assert.Empty(o);   // no certificate check is skipped unless asked
    }

    [Fact]
    public void A_node_inherits_the_cluster_WinRM_settings_and_overrides_them_key_by_key()
    {
        var (p, o) = Build("winrm://bb1.corp.example", clusterWinRM: new Hashtable { ["UseSSL"] = true, ["Authentication"] = "Negotiate", ["SkipCACheck"] = true },
            nodeWinRM: new Hashtable { ["Authentication"] = "CredSSP" }, cred: Cred(@"CORP\svc-bitbucket"));
        Assert.Equal(true, p["UseSSL"]);
        Assert.False(p.ContainsKey("Port"));
        Assert.Equal("CredSSP", p["Authentication"]);
        Assert.Equal(@"CORP\svc-bitbucket", ((PSCredential)p["Credential"]!).UserName);
        Assert.Equal(true, o["SkipCACheck"]);
        Assert.False(o.ContainsKey("SkipCNCheck"));
    }

    [Fact]
    public void Skipped_certificate_checks_are_warned_about_loudly_per_node()
    {
        var profile = ClusterProfileReader.Read(ProfileData(null, new Hashtable { ["UseSSL"] = true, ["SkipCACheck"] = true, ["SkipCNCheck"] = true }, "winrm://bb1.corp.example"));
        var warning = Assert.Single(NodeShellOpener.CertificateCheckWarnings(profile.Nodes));
        Assert.Contains("node-1", warning);
        Assert.Contains("SkipCACheck, SkipCNCheck", warning);
        Assert.Contains("OFF", warning);
    }

    [Fact]
    public void The_user_of_winrm_user_at_host_must_match_the_credential()
    {
        var (p, _) = Build("winrm://svc-bitbucket@bb1.corp.example", cred: Cred("svc-bitbucket"));
        Assert.Equal("svc-bitbucket", ((PSCredential)p["Credential"]!).UserName);
        Assert.Equal("NodeRemotingCredentialMissing", Assert.Throws<BbException>(() => Build("winrm://svc-bitbucket@bb1.corp.example")).ErrorId);
        Assert.Equal("NodeRemotingCredentialMismatch", Assert.Throws<BbException>(() => Build("winrm://svc-bitbucket@bb1.corp.example", cred: Cred("other"))).ErrorId);
    }

    [Fact]
    public void Basic_over_HTTP_and_Basic_without_a_credential_are_refused()
    {
        var http = Assert.Throws<BbException>(() => Build("winrm://bb1.corp.example", nodeWinRM: new Hashtable { ["Authentication"] = "Basic" }, cred: Cred("u")));
        Assert.Equal("NodeWinRMInsecure", http.ErrorId);
        Assert.Equal("NodeRemotingCredentialMissing", Assert.Throws<BbException>(() => Build("winrm://bb1.corp.example:5986", nodeWinRM: new Hashtable { ["Authentication"] = "Basic" })).ErrorId);
        var (p, _) = Build("winrm://bb1.corp.example:5986", nodeWinRM: new Hashtable { ["Authentication"] = "Basic" }, cred: Cred("u"));
        Assert.Equal("Basic", p["Authentication"]);
    }

    [Fact]
    public void No_WSMan_client_on_Linux_says_what_to_do_instead()
    {
        var ex = Assert.Throws<BbException>(() => Build("winrm://bb1.corp.example", host: Linux76));
        Assert.Equal("NodeWSManUnavailable", ex.ErrorId);
        Assert.Contains("pwsh+ssh://", ex.Message);
        Assert.Contains("PSWSMan", ex.Message);
    }

    [Fact]
    public void PowerShell_over_SSH_needs_7_and_pinned_host_keys_need_73()
    {
        Assert.Equal("NodeTransportNeedsPowerShell7", Assert.Throws<BbException>(() => Build("pwsh+ssh://bitbucket@bb1.corp.example", host: Desktop51)).ErrorId);
        var known = Path.Combine(_dir, "known hosts");
        File.WriteAllText(known, "");
        var ssh = ProfileData(null, null, "pwsh+ssh://bitbucket@bb1.corp.example:2222");
        ((Hashtable)((object[])ssh["Nodes"]!)[0])["Ssh"] = new Hashtable { ["KnownHostsFile"] = known };
        var node = ClusterProfileReader.Read(ssh).Nodes[0];
        var target = RemotingTarget.Parse(node);
        var old = new NodeShellOpener.SessionHost { IsWindows = true, PowerShellVersion = new Version(7, 2, 24), HasWSMan = true };
        Assert.Equal("NodeTransportNeedsPowerShell73", Assert.Throws<BbException>(() => NodeShellOpener.SessionParameters(target, node, null, old)).ErrorId);
        var (p, _) = NodeShellOpener.SessionParameters(target, node, null, Linux76);
        Assert.Equal("bb1.corp.example", p["HostName"]);
        Assert.Equal("bitbucket", p["UserName"]);
        Assert.Equal(2222, p["Port"]);
        Assert.Equal("yes", ((Hashtable)p["Options"]!)["StrictHostKeyChecking"]);
    }

    [Fact]
    public void An_unknown_authentication_is_a_profile_error()
    {
        var ex = Assert.ThrowsAny<Exception>(() => ClusterProfileReader.Read(ProfileData(null, new Hashtable { ["Authentication"] = "Digest" }, "winrm://bb1.corp.example")));
        Assert.Contains("Digest", ex.Message);
    }
}

public class SessionHostTests
{
    [Fact]
    public void This_Linux_test_host_is_PowerShell_7_without_a_WSMan_client()
    {
        var host = NodeShellOpener.SessionHost.Current();
        Assert.False(host.IsWindows);
        Assert.False(host.IsDesktop);
        Assert.True(host.PowerShellVersion >= new Version(7, 4), host.PowerShellVersion.ToString());
        Assert.False(host.HasWSMan);   // as New-PSSession -ComputerName reports here: "no supported WSMan client library was found"
    }
}

public class NodeCmdletWSManTests
{
    [Fact]
    public void A_node_cmdlet_over_WinRM_on_Linux_fails_with_NodeWSManUnavailable_before_connecting()
    {
        using var ps = PowerShell.Create();
        ps.AddScript("param($m) Import-Module $m; Get-BbNodeInstallation -ComputerName bb1.corp.example -Port 5986")
            .AddArgument(Path.Combine(ModuleFolder.Path_, "BitbucketZdu.dll"));
        ps.Invoke();
        var error = Assert.Single(ps.Streams.Error);
        Assert.StartsWith("NodeWSManUnavailable,", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.NotInstalled, error.CategoryInfo.Category);
        Assert.Contains("pwsh+ssh://", error.Exception.Message);
    }
}
