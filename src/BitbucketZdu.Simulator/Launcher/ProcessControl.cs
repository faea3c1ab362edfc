using System.Diagnostics;

namespace BitbucketZdu.Simulator.Launcher;

/// <summary>Finding and stopping simulated node processes by their pid files, never by name.</summary>
public static class ProcessControl
{
    /// <summary>True when <paramref name="pid"/> is alive and is a bbsim node (checked on /proc where it exists).</summary>
    public static bool IsBbsimNode(int pid)
    {
        if (!IsAlive(pid)) return false;
        var cmdline = $"/proc/{pid}/cmdline";
        if (!File.Exists(cmdline)) return true;
        var text = File.ReadAllText(cmdline).Replace('\0', ' ');
        return text.Contains("bbsim", StringComparison.Ordinal) && text.Contains(" node ", StringComparison.Ordinal);
    }

    /// <summary>
    /// True while <paramref name="pid"/> runs. A zombie counts as exited: a node detached by start-bitbucket.sh is
    /// reaped by init, which may take a while, and kill -0 (and Process.HasExited) still see it until then.
    /// </summary>
    public static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        if (File.Exists(stat))
        {
            try
            {
                var text = File.ReadAllText(stat);
                var state = text[(text.LastIndexOf(')') + 2)..].FirstOrDefault();
                return state is not ('Z' or 'X');
            }
            catch (IOException)
            {
                return false;
            }
        }
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Waits until <see cref="IsAlive"/> is false; returns false on timeout.</summary>
    public static async Task<bool> WaitForExitAsync(int pid, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (IsAlive(pid))
        {
            if (sw.Elapsed > timeout) return false;
            await Task.Delay(50);
        }
        return true;
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
        if (OperatingSystem.IsWindows()) await ShutdownEndpointAsync(home);
        else Signal(pid.Value, "TERM");
        if (!await WaitForExitAsync(pid.Value, wait))
        {
            if (!killAfterWait) return $"{home}: pid {pid} did not stop within {wait.TotalSeconds:0.#} s and is still running.";
            using (var process = Process.GetProcessById(pid.Value)) process.Kill(entireProcessTree: true);
            await WaitForExitAsync(pid.Value, TimeSpan.FromSeconds(10));
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
