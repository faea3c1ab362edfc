using System.Diagnostics;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>Finding and stopping simulated node processes by their pid files, never by name.</summary>
public static class ProcessControl
{
    /// <summary>True when <paramref name="pid"/> is alive and is a bbsim node (checked on /proc where it exists).</summary>
    public static bool IsBbsimNode(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            if (p.HasExited) return false;
        }
        catch (ArgumentException)
        {
            return false;
        }
        var cmdline = $"/proc/{pid}/cmdline";
        if (!File.Exists(cmdline)) return true;
        var text = File.ReadAllText(cmdline).Replace('\0', ' ');
        return text.Contains("bbsim", StringComparison.Ordinal) && text.Contains(" node ", StringComparison.Ordinal);
    }

    public static int? ReadPid(string home)
    {
        var file = Path.Combine(home, "bitbucket.pid");
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), out var pid) ? pid : null;
    }

    /// <summary>
    /// Stops the node of <paramref name="home"/> gracefully (SIGTERM, or the node's shutdown endpoint on Windows), waits
    /// up to <paramref name="wait"/>, then kills it. Returns a line saying what happened.
    /// </summary>
    public static async Task<string> StopNodeAsync(string home, TimeSpan wait, bool killAfterWait)
    {
        var pid = ReadPid(home);
        if (pid is null) return $"{home}: not running (no bitbucket.pid).";
        if (!IsBbsimNode(pid.Value))
        {
            File.Delete(Path.Combine(home, "bitbucket.pid"));
            return $"{home}: not running (stale pid {pid}).";
        }
        using var process = Process.GetProcessById(pid.Value);
        if (OperatingSystem.IsWindows()) await ShutdownEndpointAsync(home);
        else Signal(pid.Value, "TERM");
        using var cts = new CancellationTokenSource(wait);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            if (!killAfterWait) return $"{home}: pid {pid} did not stop within {wait.TotalSeconds:0.#} s and is still running.";
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            File.Delete(Path.Combine(home, "bitbucket.pid"));
            return $"{home}: pid {pid} did not stop within {wait.TotalSeconds:0.#} s; killed.";
        }
        File.Delete(Path.Combine(home, "bitbucket.pid"));
        return $"{home}: stopped (pid {pid}).";
    }

    public static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", new[] { "-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        });
        kill?.WaitForExit();
    }

    private static async Task ShutdownEndpointAsync(string home)
    {
        var tokenFile = Path.Combine(home, "bbsim-shutdown.token");
        var portFile = Path.Combine(home, "bbsim-port");
        if (!File.Exists(tokenFile) || !File.Exists(portFile)) return;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{File.ReadAllText(portFile).Trim()}/bbsim/admin/shutdown");
        request.Headers.Add("X-Bbsim-Shutdown-Token", File.ReadAllText(tokenFile).Trim());
        try { (await http.SendAsync(request)).Dispose(); } catch (HttpRequestException) { }
    }
}
