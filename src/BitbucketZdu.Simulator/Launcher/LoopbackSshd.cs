using System.Diagnostics;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>
/// The folder of a private OpenSSH server on loopback, for the tests (TestSupport's SshServer) and the Pester suite
/// (tests/pester/SimCluster.psm1 loads this type from bbsim.dll): its own host key pinned in a known_hosts file (host keys
/// are verified as in production), a client key authorized for key-only login as the current user, and sshd_config.
/// Starting and stopping sshd is the caller's (<c>sshd -D -e -f &lt;ConfigFile&gt;</c>).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed record LoopbackSshd(string Dir, int Port)
{
    public string HostName => "127.0.0.1";
    public string UserName { get; } = Environment.UserName;
    public string KeyFile => Path.Combine(Dir, "client_key");
    public string KnownHostsFile => Path.Combine(Dir, "known_hosts");
    public string ConfigFile => Path.Combine(Dir, "sshd_config");
    public string PidFile => Path.Combine(Dir, "sshd.pid");

    /// <summary>Writes keys, known_hosts and sshd_config into <paramref name="dir"/> for <paramref name="port"/>.</summary>
    /// <param name="powershellSubsystem">The command of a PowerShell subsystem (<c>Subsystem powershell</c>; a wrapper script is written), or null or "" for none.</param>
    public static LoopbackSshd Prepare(string dir, int port, string sshKeygen, string? powershellSubsystem = null)
    {
        Directory.CreateDirectory(dir);
        var s = new LoopbackSshd(dir, port);
        var hostKey = Path.Combine(dir, "host_key");
        Keygen(sshKeygen, hostKey);
        Keygen(sshKeygen, s.KeyFile);
        File.Copy(s.KeyFile + ".pub", Path.Combine(dir, "authorized_keys"));
        var hostPub = File.ReadAllText(hostKey + ".pub").Trim().Split(' ');
        File.WriteAllText(s.KnownHostsFile, $"[{s.HostName}]:{port} {hostPub[0]} {hostPub[1]}\n");

        var subsystem = "";
        if (!string.IsNullOrEmpty(powershellSubsystem))   // PowerShell passes $null to a string as ""
        {
            var wrapper = Path.Combine(dir, "pwsh-subsystem.sh");
            File.WriteAllText(wrapper, $"#!/bin/sh\nexec {powershellSubsystem}\n");
            File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            subsystem = $"Subsystem powershell {wrapper}\n";
        }
        File.WriteAllText(s.ConfigFile, $"""
            Port {port}
            ListenAddress {s.HostName}
            HostKey {hostKey}
            PidFile {s.PidFile}
            AuthorizedKeysFile {dir}/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            MaxSessions 50
            MaxStartups 50:30:100

            """ + subsystem);
        return s;
    }

    private static void Keygen(string sshKeygen, string file)
    {
        var psi = new ProcessStartInfo(sshKeygen) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-q", "-t", "ed25519", "-N", "", "-f", file }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(20_000)) { p.Kill(); throw new InvalidOperationException($"{sshKeygen} did not finish within 20 s."); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{sshKeygen} failed: {stderr.Result}");
    }
}
