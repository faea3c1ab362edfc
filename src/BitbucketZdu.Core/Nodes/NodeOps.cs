using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>
    /// The primitive operations node steps need, written once per script language: POSIX sh (Linux nodes over plain
    /// SSH or a PSSession's /bin/sh) and PowerShell (Windows nodes). Steps above this are platform-neutral.
    /// </summary>
    internal abstract class NodeOps
    {
        protected NodeOps(INodeShell shell, NodeStepOptions options)
        {
            Shell = shell;
            Options = options;
        }

        public INodeShell Shell { get; }
        public NodeStepOptions Options { get; }
        public ShellPlatform Platform => Shell.Platform;

        public static NodeOps For(INodeShell shell, NodeStepOptions options) =>
            shell.Platform == ShellPlatform.Posix ? new PosixOps(shell, options) : (NodeOps)new WindowsOps(shell, options);

        public abstract string Combine(params string[] parts);
        public abstract string Parent(string path);
        public abstract string ScriptExtension { get; }

        public string Q(string value) => ShellQuote.For(Platform, value);

        public Task<ShellResult> RunAsync(string command, CancellationToken ct, TimeSpan? timeout = null,
            IReadOnlyDictionary<string, string>? environment = null) =>
            Shell.RunAsync(command, timeout ?? Options.CommandTimeout, ct, environment);

        /// <summary>Runs a command that must succeed; a failure throws NodeCommandFailed naming what was being done.</summary>
        public async Task<string> RunCheckedAsync(string command, string doing, CancellationToken ct, TimeSpan? timeout = null,
            string errorId = "NodeCommandFailed", IReadOnlyDictionary<string, string>? environment = null)
        {
            var r = await RunAsync(command, ct, timeout, environment).ConfigureAwait(false);
            if (!r.Succeeded)
                throw new BbException(errorId, BbErrorCategory.InvalidResult,
                    $"Could not {doing} on {Shell.HostName} (exit code {r.ExitCode}): {Tail(r.StandardError + r.StandardOutput)}", Shell.HostName);
            return r.StandardOutput;
        }

        public static string Tail(string text, int max = 600)
        {
            text = text.Trim();
            return text.Length <= max ? text : "…" + text.Substring(text.Length - max);
        }

        public abstract Task<string?> GetEnvironmentAsync(string name, CancellationToken ct);

        /// <summary>Reads several files in one round trip; a missing or unreadable file maps to null.</summary>
        public abstract Task<IReadOnlyList<string?>> ReadFilesAsync(IReadOnlyList<string> paths, CancellationToken ct);
        public abstract Task<IReadOnlyList<string>> ListAsync(string dir, CancellationToken ct);

        /// <summary>In one round trip: BITBUCKET_HOME of the environment, the names in <paramref name="libDir"/>, free bytes at <paramref name="parent"/>.</summary>
        public abstract Task<(string? Home, IReadOnlyList<string> Lib, long? FreeBytes)> FactsAsync(string libDir, string parent, CancellationToken ct);

        protected static (string? Home, IReadOnlyList<string> Lib, long? FreeBytes) ParseFacts(string output)
        {
            var parts = output.Split('\u001e');
            string Part(int i) => i < parts.Length ? parts[i].Trim() : "";
            return (Part(0).Length == 0 ? null : Part(0),
                Part(1).Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries),
                ParseLong(Part(2)));
        }
        public abstract Task<long?> FreeBytesAsync(string path, CancellationToken ct);
        public abstract Task<long?> FileSizeAsync(string path, CancellationToken ct);
        public abstract Task<string> Sha256Async(string path, CancellationToken ct);
        public abstract Task<bool> IsProcessAliveAsync(int pid, CancellationToken ct);

        /// <summary>
        /// Reads the pid file, and if that process lives runs the stop (the bin script in <paramref name="scriptDir"/> or
        /// the service) and waits on the node itself until it exits or <paramref name="timeout"/> passes: one round trip
        /// instead of one per check (each is an ssh process over plain SSH). Null where the platform has no such script;
        /// the caller then goes step by step.
        /// </summary>
        public virtual Task<OneTripOutcome?> StopAndWaitAsync(NodeInstallation installation, string scriptDir, string pidFile, TimeSpan timeout, CancellationToken ct) =>
            Task.FromResult<OneTripOutcome?>(null);

        /// <summary>
        /// Sets <paramref name="key"/> in a key=value state file (<see cref="NodeMarker"/>) and returns the file as the node
        /// has it afterwards (read back in the same round trip), or null where only the write is known to have succeeded.
        /// </summary>
        public virtual async Task<string?> SetMarkerValueAsync(string path, string key, string value, CancellationToken ct)
        {
            var marker = NodeMarker.Parse((await ReadFilesAsync(new[] { path }, ct).ConfigureAwait(false))[0]);
            marker[key] = value;
            await Shell.WriteTextAsync(path, marker.ToString(), ct).ConfigureAwait(false);
            return null;
        }

        /// <summary>
        /// Reads the pid file: if that process lives, prints the home's state file (which install the module started);
        /// else runs the start (bin script or service) and, when it succeeded, writes <paramref name="stateText"/> to
        /// <paramref name="statePath"/> (temp file, then rename). One round trip; null where the platform has no such
        /// script (the caller then goes step by step).
        /// </summary>
        public virtual Task<OneTripOutcome?> StartInOneTripAsync(NodeInstallation installation, string runDir, IEnumerable<string> arguments, string pidFile,
            string statePath, string stateText, CancellationToken ct) => Task.FromResult<OneTripOutcome?>(null);
        public abstract Task KillAsync(int pid, CancellationToken ct);
        public abstract Task MakeDirAsync(string path, CancellationToken ct);
        public Task RemoveTreeAsync(string path, CancellationToken ct) => RemoveTreeAsync(path, null, ct);
        /// <summary>Removes one or two trees (module-owned temp paths only) in one round trip.</summary>
        public abstract Task RemoveTreeAsync(string path, string? second, CancellationToken ct);
        /// <summary>Renames; fails (false) when the destination exists. A same-file-system rename is atomic.</summary>
        public abstract Task<ShellResult> RenameAsync(string from, string to, CancellationToken ct);
        /// <summary>Extracts into <paramref name="destination"/>, which is emptied and created first (a module-owned temp dir).</summary>
        public abstract Task<ShellResult> ExtractAsync(string archive, string destination, CancellationToken ct);
        public abstract Task<ShellResult> FetchAsync(Uri uri, string destination, CancellationToken ct);
        /// <summary>Runs bin/start-bitbucket or bin/stop-bitbucket of an install dir, detached from the session.</summary>
        public abstract Task<ShellResult> RunBinScriptAsync(string installDir, string script, IEnumerable<string> arguments, string? home, CancellationToken ct);
        public abstract Task<ShellResult> ServiceAsync(NodeInstallation installation, bool start, CancellationToken ct);
        /// <summary>Finds a Bitbucket service: (mode, name, definition path, the text to edit when it is a file).</summary>
        public abstract Task<(NodeRunMode Mode, string? Name, string? Definition)> DetectServiceAsync(CancellationToken ct);
        /// <summary>Replaces one install dir by another in the service definition; returns a diff ("" when nothing changed).</summary>
        public abstract Task<string> RepointServiceAsync(NodeInstallation installation, string from, string to, CancellationToken ct);
        /// <summary>The text of the service definition (for discovery); null when there is none.</summary>
        public abstract Task<string?> ReadServiceDefinitionAsync(NodeInstallation installation, CancellationToken ct);

        protected static long? ParseLong(string text) =>
            long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : (long?)null;
    }

    internal sealed class PosixOps : NodeOps
    {
        public PosixOps(INodeShell shell, NodeStepOptions options) : base(shell, options) { }

        public override string ScriptExtension => ".sh";

        public override string Combine(params string[] parts) =>
            string.Join("/", parts.Select((p, i) => i == 0 ? p.TrimEnd('/') : p.Trim('/')).Where(p => p.Length > 0 || parts.Length == 1));

        public override string Parent(string path)
        {
            var t = path.TrimEnd('/');
            var i = t.LastIndexOf('/');
            return i <= 0 ? "/" : t.Substring(0, i);
        }

        public override async Task<string?> GetEnvironmentAsync(string name, CancellationToken ct)
        {
            var r = await RunAsync("printf '%s' \"${" + name + "-}\"", ct).ConfigureAwait(false);
            return string.IsNullOrEmpty(r.StandardOutput) ? null : r.StandardOutput;
        }

        public override async Task<IReadOnlyList<string?>> ReadFilesAsync(IReadOnlyList<string> paths, CancellationToken ct)
        {
            // Each file is framed by \x1e<index>:<1 read|0 missing>\x1e.
            var sb = new System.Text.StringBuilder();
            for (var i = 0; i < paths.Count; i++)
                sb.Append($"if [ -f {Q(paths[i])} ] && [ -r {Q(paths[i])} ]; then printf '\\036{i}:1\\036'; cat -- {Q(paths[i])}; else printf '\\036{i}:0\\036'; fi; ");
            var r = await RunAsync(sb.ToString(), ct).ConfigureAwait(false);
            var result = new string?[paths.Count];
            var parts = Regex.Split(r.StandardOutput, "\u001e(\\d+):([01])\u001e");
            for (var k = 1; k + 1 < parts.Length; k += 3)
            {
                var index = int.Parse(parts[k], CultureInfo.InvariantCulture);
                if (parts[k + 1] == "1" && index < result.Length) result[index] = k + 2 < parts.Length ? parts[k + 2] : "";
            }
            return result;
        }

        public override async Task<IReadOnlyList<string>> ListAsync(string dir, CancellationToken ct)
        {
            var r = await RunAsync("ls -1A -- " + Q(dir), ct).ConfigureAwait(false);
            return r.Succeeded ? r.StandardOutput.Split(new[] { '\n' }, StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        }

        public override async Task<long?> FreeBytesAsync(string path, CancellationToken ct)
        {
            var r = await RunAsync("df -Pk -- " + Q(path) + " | awk 'NR==2 {print $4}'", ct).ConfigureAwait(false);
            return ParseLong(r.StandardOutput) * 1024;
        }

        public override async Task<(string? Home, IReadOnlyList<string> Lib, long? FreeBytes)> FactsAsync(string libDir, string parent, CancellationToken ct)
        {
            var r = await RunAsync("printf '%s\\036' \"${BITBUCKET_HOME-}\"; ls -1A -- " + Q(libDir) + " 2>/dev/null; printf '\\036'; " +
                                   "df -Pk -- " + Q(parent) + " | awk 'NR==2 {print $4}'", ct).ConfigureAwait(false);
            var facts = ParseFacts(r.StandardOutput);
            return (facts.Home, facts.Lib, facts.FreeBytes * 1024);
        }

        public override async Task<long?> FileSizeAsync(string path, CancellationToken ct)
        {
            var r = await RunAsync("wc -c < " + Q(path), ct).ConfigureAwait(false);
            return r.Succeeded ? ParseLong(r.StandardOutput) : null;
        }

        public override async Task<string> Sha256Async(string path, CancellationToken ct)
        {
            var p = Q(path);
            var output = await RunCheckedAsync(
                $"if command -v sha256sum >/dev/null 2>&1; then sha256sum -- {p}; elif command -v shasum >/dev/null 2>&1; then shasum -a 256 {p}; else openssl dgst -sha256 -r {p}; fi",
                "compute the SHA-256 of " + path, ct, Options.TransferTimeout).ConfigureAwait(false);
            return output.Trim().Split(' ')[0].ToLowerInvariant();
        }

        /// <summary>bbzdu_alive PID: true while the process lives. A zombie (exited, not yet reaped, common in containers without an init) counts as gone.</summary>
        internal const string AliveFunction =
            "bbzdu_alive() { if [ -r /proc/$1/status ]; then grep -q '^State:[[:space:]]*Z' /proc/$1/status && return 1; return 0; fi; kill -0 $1 2>/dev/null; }";

        public override async Task<bool> IsProcessAliveAsync(int pid, CancellationToken ct)
        {
            var r = await RunAsync($"{AliveFunction}; bbzdu_alive {pid}", ct).ConfigureAwait(false);
            return r.Succeeded;
        }

        public override async Task<OneTripOutcome?> StopAndWaitAsync(NodeInstallation installation, string scriptDir, string pidFile, TimeSpan timeout, CancellationToken ct)
        {
            var (stop, env) = ControlCommand(installation, scriptDir, start: false, Array.Empty<string>());
            var seconds = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
            // The wait runs on the node, every 50 ms (a whole second where sleep takes no fraction), bounded by the
            // deadline on the node's own clock; the last line says what it came to.
            var script = AliveFunction + "\n" +
                $"pid=$(tr -dc 0-9 2>/dev/null < {Q(pidFile)})\n" +
                "case \"$pid\" in ''|0) echo \"BBZDU-STOP not-running 0 0\"; exit 0;; esac\n" +
                "bbzdu_alive \"$pid\" || { echo \"BBZDU-STOP not-running $pid 0\"; exit 0; }\n" +
                $"end=$(( $(date +%s) + {seconds} ))\n" +   // the deadline counts the stop command's own time
                $"( {stop} ); rc=$?\n" +
                "while bbzdu_alive \"$pid\"; do\n" +
                "  if [ \"$(date +%s)\" -ge \"$end\" ]; then echo \"BBZDU-STOP running $pid $rc\"; exit 0; fi\n" +
                "  sleep 0.05 2>/dev/null || sleep 1\n" +
                "done\n" +
                "echo \"BBZDU-STOP exited $pid $rc\"\n";
            var r = await RunAsync(script, ct, timeout + Options.CommandTimeout, env).ConfigureAwait(false);
            return OneTripOutcome.Parse(r, "STOP", "not-running", "exited", "running") ?? throw new BbException("NodeCommandFailed", BbErrorCategory.InvalidResult,
                $"Could not stop Bitbucket on {Shell.HostName} (exit code {r.ExitCode}): {Tail(r.StandardError + r.StandardOutput)}", Shell.HostName);
        }

        public override async Task<string?> SetMarkerValueAsync(string path, string key, string value, CancellationToken ct)
        {
            // Other keys kept, this one replaced; temp file then rename; then the file as it now is.
            var p = Q(path);
            var t = Q(path + ".bbzdu-tmp");
            var line = Q(key + "=" + value.Replace("\r", " ").Replace("\n", " "));
            var output = await RunCheckedAsync(
                $"{{ grep -v {Q("^" + key + "=")} {p} 2>/dev/null; printf '%s\\n' {line}; }} > {t} && mv -f {t} {p} && cat -- {p}",
                "record " + key + " in " + path, ct).ConfigureAwait(false);
            return output;
        }

        public override async Task<OneTripOutcome?> StartInOneTripAsync(NodeInstallation installation, string runDir, IEnumerable<string> arguments, string pidFile,
            string statePath, string stateText, CancellationToken ct)
        {
            var (start, env) = ControlCommand(installation, runDir, start: true, arguments);
            var tmp = Q(statePath + ".bbzdu-tmp");
            var script = AliveFunction + "\n" +
                $"pid=$(tr -dc 0-9 2>/dev/null < {Q(pidFile)})\n" +
                $"if [ -n \"$pid\" ] && [ \"$pid\" != 0 ] && bbzdu_alive \"$pid\"; then echo \"BBZDU-START running $pid 0\"; cat {Q(statePath)} 2>/dev/null; exit 0; fi\n" +
                $"( {start} ); rc=$?\n" +
                "[ $rc -eq 0 ] || { echo \"BBZDU-START failed 0 $rc\"; exit 0; }\n" +
                $"printf '%s' {Q(stateText)} > {tmp} && mv -f {tmp} {Q(statePath)} || {{ echo \"BBZDU-START no-state 0 0\"; exit 0; }}\n" +
                "echo \"BBZDU-START started 0 0\"\n";
            var r = await RunAsync(script, ct, null, env).ConfigureAwait(false);
            return OneTripOutcome.Parse(r, "START", "running", "failed", "started", "no-state") ?? throw new BbException("NodeCommandFailed", BbErrorCategory.InvalidResult,
                $"Could not start Bitbucket on {Shell.HostName} (exit code {r.ExitCode}): {Tail(r.StandardError + r.StandardOutput)}", Shell.HostName);
        }

        public override Task KillAsync(int pid, CancellationToken ct) =>
            RunAsync($"kill -9 {pid} 2>/dev/null", ct);

        public override Task MakeDirAsync(string path, CancellationToken ct) =>
            RunCheckedAsync("mkdir -p -- " + Q(path), "create " + path, ct);

        public override Task RemoveTreeAsync(string path, string? second, CancellationToken ct) =>
            RunAsync("rm -rf -- " + Q(path) + (second is null ? "" : " " + Q(second)), ct, Options.TransferTimeout);

        public override Task<ShellResult> RenameAsync(string from, string to, CancellationToken ct) =>
            RunAsync($"if [ -e {Q(to)} ]; then echo {Q(to + " exists")} >&2; exit 3; fi; mv -- {Q(from)} {Q(to)}", ct);

        public override Task<ShellResult> ExtractAsync(string archive, string destination, CancellationToken ct)
        {
            var a = Q(archive);
            var d = Q(destination);
            var cmd = $"rm -rf -- {d} && mkdir -p -- {d} || exit 1; " + (archive.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)
                ? $"command -v unzip >/dev/null 2>&1 || {{ echo 'unzip is not installed on the node (Debian: apt-get install unzip); use the .tar.gz archive instead' >&2; exit 127; }}; unzip -q -o {a} -d {d} && find {d} -path '*/bin/*.sh' -exec chmod +x {{}} +"
                : $"tar -xzf {a} -C {d}");
            return RunAsync(cmd, ct, Options.TransferTimeout);
        }

        public override Task<ShellResult> FetchAsync(Uri uri, string destination, CancellationToken ct)
        {
            var u = Q(uri.AbsoluteUri);
            var d = Q(destination);
            return RunAsync($"if command -v curl >/dev/null 2>&1; then curl -fsSL -o {d} {u}; elif command -v wget >/dev/null 2>&1; then wget -q -O {d} {u}; " +
                            "else echo 'neither curl nor wget is installed on the node' >&2; exit 127; fi", ct, Options.TransferTimeout);
        }

        public override Task<ShellResult> RunBinScriptAsync(string installDir, string script, IEnumerable<string> arguments, string? home, CancellationToken ct)
        {
            var (cmd, env) = BinScriptCommand(installDir, script, arguments, home);
            return RunAsync(cmd, ct, null, env);
        }

        private (string Command, IReadOnlyDictionary<string, string>? Environment) BinScriptCommand(string installDir, string script, IEnumerable<string> arguments, string? home)
        {
            var args = string.Join(" ", arguments.Select(Q));
            // Output goes to a log in the home dir, never to this session: a started JVM would hold the channel open.
            var log = home is null ? "/dev/null" : Q(Combine(home, "bbzdu-" + script + ".log"));
            var env = home is null ? null : new Dictionary<string, string> { ["BITBUCKET_HOME"] = home };
            return ($"cd {Q(Combine(installDir, "bin"))} || exit 1; nohup ./{script}.sh {args} > {log} 2>&1 < /dev/null; rc=$?; " +
                    $"[ $rc -eq 0 ] || {{ [ -r {log} ] && tail -n 20 {log} >&2; }}; exit $rc", env);
        }

        /// <summary>The start or stop as the node runs Bitbucket: its bin script in <paramref name="dir"/>, or its service.</summary>
        private (string Command, IReadOnlyDictionary<string, string>? Environment) ControlCommand(NodeInstallation installation, string dir, bool start,
            IEnumerable<string> arguments) =>
            installation.RunMode == NodeRunMode.BinScripts
                ? BinScriptCommand(dir, start ? "start-bitbucket" : "stop-bitbucket", arguments, installation.HomeDir)
                : (ServiceCommand(installation, start), null);

        public override Task<ShellResult> ServiceAsync(NodeInstallation installation, bool start, CancellationToken ct) =>
            RunAsync(ServiceCommand(installation, start), ct);

        private string ServiceCommand(NodeInstallation installation, bool start)
        {
            var verb = start ? "start" : "stop";
            return installation.RunMode == NodeRunMode.Systemd
                ? $"systemctl {verb} {Q(installation.ServiceName ?? "atlbitbucket")}"
                : $"{Q(installation.ServiceDefinition ?? Options.InitScriptPath)} {verb} < /dev/null > /dev/null 2>&1";
        }

        public override async Task<(NodeRunMode Mode, string? Name, string? Definition)> DetectServiceAsync(CancellationToken ct)
        {
            var candidates = Options.SystemdUnitPaths.Concat(new[] { Options.InitScriptPath }).ToList();
            var r = await RunAsync(string.Join(" ", candidates.Select(c => $"[ -f {Q(c)} ] && {{ printf '%s' {Q(c)}; exit 0; }};")) + " exit 0", ct).ConfigureAwait(false);
            var found = r.StandardOutput.Trim();
            if (found.Length == 0) return (NodeRunMode.BinScripts, null, null);
            var name = found.Substring(found.LastIndexOf('/') + 1);
            return found == Options.InitScriptPath
                ? (NodeRunMode.InitScript, name, found)
                : (NodeRunMode.Systemd, name.EndsWith(".service", StringComparison.Ordinal) ? name.Substring(0, name.Length - 8) : name, found);
        }

        public override async Task<string?> ReadServiceDefinitionAsync(NodeInstallation installation, CancellationToken ct) =>
            installation.ServiceDefinition is null ? null : await Shell.ReadTextAsync(installation.ServiceDefinition, ct).ConfigureAwait(false);

        public override async Task<string> RepointServiceAsync(NodeInstallation installation, string from, string to, CancellationToken ct)
        {
            var path = installation.ServiceDefinition!;
            var before = await Shell.ReadTextAsync(path, ct).ConfigureAwait(false);
            var after = ReplaceDir(before, from, to);
            if (after == before) return "";
            await Shell.WriteTextAsync(path, after, ct).ConfigureAwait(false);
            if (installation.RunMode == NodeRunMode.Systemd)
                await RunAsync("if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi", ct).ConfigureAwait(false);
            return AssignmentFile.Diff(path.TrimStart('/'), before, after);
        }

        /// <summary>Replaces a directory path only where it stands as a whole path (followed by '/', a quote, space or line end).</summary>
        internal static string ReplaceDir(string text, string from, string to) =>
            Regex.Replace(text, Regex.Escape(from.TrimEnd('/')) + @"(?=[/""'\s;:]|$)", to.TrimEnd('/').Replace("$", "$$"), RegexOptions.Multiline);
    }

    /// <summary>Windows nodes: PowerShell commands (run over a WinRM or SSH PSSession). Not exercised on Linux CI.</summary>
    internal sealed class WindowsOps : NodeOps
    {
        public WindowsOps(INodeShell shell, NodeStepOptions options) : base(shell, options) { }

        public override string ScriptExtension => ".bat";

        public override string Combine(params string[] parts) =>
            string.Join("\\", parts.Select((p, i) => i == 0 ? p.TrimEnd('\\', '/') : p.Trim('\\', '/').Replace('/', '\\')).Where(p => p.Length > 0));

        public override string Parent(string path)
        {
            var t = path.TrimEnd('\\', '/');
            var i = t.LastIndexOfAny(new[] { '\\', '/' });
            return i <= 0 ? t : t.Substring(0, i);
        }

        public override async Task<string?> GetEnvironmentAsync(string name, CancellationToken ct)
        {
            var r = await RunAsync($"[Environment]::GetEnvironmentVariable({Q(name)})", ct).ConfigureAwait(false);
            var v = r.StandardOutput.Trim();
            return v.Length == 0 ? null : v;
        }

        public override async Task<IReadOnlyList<string?>> ReadFilesAsync(IReadOnlyList<string> paths, CancellationToken ct)
        {
            var list = string.Join(", ", paths.Select(Q));
            var r = await RunAsync($"$r = @(foreach ($p in @({list})) {{ if (Test-Path -LiteralPath $p -PathType Leaf) {{ [IO.File]::ReadAllText($p) }} else {{ $null }} }}); ConvertTo-Json -InputObject $r -Compress", ct).ConfigureAwait(false);
            var result = new string?[paths.Count];
            if (!r.Succeeded) return result;
            using var doc = System.Text.Json.JsonDocument.Parse(r.StandardOutput);
            var i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (i < result.Length && e.ValueKind == System.Text.Json.JsonValueKind.String) result[i] = e.GetString();
                i++;
            }
            return result;
        }

        public override async Task<IReadOnlyList<string>> ListAsync(string dir, CancellationToken ct)
        {
            var r = await RunAsync($"Get-ChildItem -LiteralPath {Q(dir)} -Force -Name", ct).ConfigureAwait(false);
            return r.Succeeded ? r.StandardOutput.Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        }

        public override async Task<(string? Home, IReadOnlyList<string> Lib, long? FreeBytes)> FactsAsync(string libDir, string parent, CancellationToken ct)
        {
            var r = await RunAsync($"$s = [string][char]30; $l = @(if (Test-Path -LiteralPath {Q(libDir)}) {{ Get-ChildItem -LiteralPath {Q(libDir)} -Force -Name }}) -join \"`n\"; " +
                                   $"$root = [IO.Path]::GetPathRoot((Resolve-Path -LiteralPath {Q(parent)}).ProviderPath); " +
                                   "[string][Environment]::GetEnvironmentVariable('BITBUCKET_HOME') + $s + $l + $s + (New-Object IO.DriveInfo $root).AvailableFreeSpace", ct).ConfigureAwait(false);
            return ParseFacts(r.StandardOutput);
        }

        public override async Task<long?> FreeBytesAsync(string path, CancellationToken ct)
        {
            var r = await RunAsync($"$root = [IO.Path]::GetPathRoot((Resolve-Path -LiteralPath {Q(path)}).ProviderPath); (New-Object IO.DriveInfo $root).AvailableFreeSpace", ct).ConfigureAwait(false);
            return ParseLong(r.StandardOutput);
        }

        public override async Task<long?> FileSizeAsync(string path, CancellationToken ct)
        {
            var r = await RunAsync($"(Get-Item -LiteralPath {Q(path)}).Length", ct).ConfigureAwait(false);
            return r.Succeeded ? ParseLong(r.StandardOutput) : null;
        }

        public override async Task<string> Sha256Async(string path, CancellationToken ct) =>
            (await RunCheckedAsync($"(Get-FileHash -LiteralPath {Q(path)} -Algorithm SHA256).Hash", "compute the SHA-256 of " + path, ct, Options.TransferTimeout).ConfigureAwait(false))
            .Trim().ToLowerInvariant();

        public override async Task<bool> IsProcessAliveAsync(int pid, CancellationToken ct)
        {
            var r = await RunAsync($"if (Get-Process -Id {pid} -ErrorAction SilentlyContinue) {{ 'alive' }}", ct).ConfigureAwait(false);
            return r.StandardOutput.Contains("alive");
        }

        public override Task KillAsync(int pid, CancellationToken ct) =>
            RunAsync($"Stop-Process -Id {pid} -Force -ErrorAction SilentlyContinue", ct);

        public override Task MakeDirAsync(string path, CancellationToken ct) =>
            RunCheckedAsync($"New-Item -ItemType Directory -Force -Path {Q(path)} | Out-Null", "create " + path, ct);

        public override Task RemoveTreeAsync(string path, string? second, CancellationToken ct) =>
            RunAsync($"foreach ($p in @({Q(path)}{(second is null ? "" : ", " + Q(second))})) {{ if (Test-Path -LiteralPath $p) {{ Remove-Item -LiteralPath $p -Recurse -Force }} }}", ct, Options.TransferTimeout);

        public override Task<ShellResult> RenameAsync(string from, string to, CancellationToken ct) =>
            RunAsync($"if (Test-Path -LiteralPath {Q(to)}) {{ throw {Q(to + " exists")} }}; Move-Item -LiteralPath {Q(from)} -Destination {Q(to)}", ct);

        public override Task<ShellResult> ExtractAsync(string archive, string destination, CancellationToken ct) =>
            RunAsync($"if (Test-Path -LiteralPath {Q(destination)}) {{ Remove-Item -LiteralPath {Q(destination)} -Recurse -Force }}; New-Item -ItemType Directory -Force -Path {Q(destination)} | Out-Null; " + (archive.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)
                // .NET's ZipFile, not Expand-Archive: that one is slow on Windows PowerShell 5.1 and streams progress
                // records through the remote session.
                ? $"Add-Type -AssemblyName System.IO.Compression.FileSystem; [IO.Compression.ZipFile]::ExtractToDirectory({Q(archive)}, {Q(destination)})"
                : $"tar.exe -xzf {Q(archive)} -C {Q(destination)}; if ($LASTEXITCODE) {{ throw \"tar exited with $LASTEXITCODE\" }}"), ct, Options.TransferTimeout);

        public override Task<ShellResult> FetchAsync(Uri uri, string destination, CancellationToken ct) =>
            RunAsync($"[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12; " +
                     $"$ProgressPreference = 'SilentlyContinue'; Invoke-WebRequest -UseBasicParsing -Uri {Q(uri.AbsoluteUri)} -OutFile {Q(destination)}", ct, Options.TransferTimeout);

        /// <summary>
        /// Refused: on Windows Bitbucket runs as the AtlassianBitbucket service (Atlassian's installer sets it up). A
        /// start-bitbucket.bat started inside a remote session dies with the session, so Script mode is not offered.
        /// </summary>
        public override Task<ShellResult> RunBinScriptAsync(string installDir, string script, IEnumerable<string> arguments, string? home, CancellationToken ct) =>
            throw new BbException("NodeWindowsServiceRequired", BbErrorCategory.InvalidOperation,
                $"{Shell.HostName} is a Windows node without the {Options.WindowsServiceName} service: the module starts and stops Bitbucket on Windows only through its service " +
                $"(a {script}.bat started in a remote session dies with the session; Atlassian: on Windows Bitbucket \"should be installed as a service\"). " +
                $"Install the service for {installDir} as Atlassian's installer does, then run again.", Shell.HostName);

        public override Task<ShellResult> ServiceAsync(NodeInstallation installation, bool start, CancellationToken ct) =>
            RunAsync($"{(start ? "Start-Service" : "Stop-Service")} -Name {Q(installation.ServiceName ?? Options.WindowsServiceName)}", ct);

        public override async Task<(NodeRunMode Mode, string? Name, string? Definition)> DetectServiceAsync(CancellationToken ct)
        {
            var name = Options.WindowsServiceName;
            var r = await RunAsync($"if (Get-Service -Name {Q(name)} -ErrorAction SilentlyContinue) {{ 'found' }}", ct).ConfigureAwait(false);
            return r.StandardOutput.Contains("found")
                ? (NodeRunMode.WindowsService, name, @"HKLM:\SYSTEM\CurrentControlSet\Services\" + name)
                : (NodeRunMode.BinScripts, null, null);
        }

        /// <summary>The registry keys of the service and of its Apache procrun parameters (JVM options, classpath).</summary>
        private string RegistryKeys(NodeInstallation installation)
        {
            var name = installation.ServiceName ?? Options.WindowsServiceName;
            return $"@({Q(@"HKLM:\SYSTEM\CurrentControlSet\Services\" + name)}, {Q(@"HKLM:\SOFTWARE\WOW6432Node\Apache Software Foundation\Procrun 2.0\" + name)}, {Q(@"HKLM:\SOFTWARE\Apache Software Foundation\Procrun 2.0\" + name)})";
        }

        public override async Task<string?> ReadServiceDefinitionAsync(NodeInstallation installation, CancellationToken ct)
        {
            var r = await RunAsync(
                // The keys are collected first (a foreach statement cannot be piped: "An empty pipe element is not allowed").
                $"$keys = @(foreach ($k in {RegistryKeys(installation)}) {{ if (Test-Path -LiteralPath $k) {{ Get-Item -LiteralPath $k; Get-ChildItem -LiteralPath $k -Recurse }} }}); $keys | " +
                "ForEach-Object { $key = $_; foreach ($n in $key.GetValueNames()) { '{0}\\{1}={2}' -f $key.Name, $n, (@($key.GetValue($n)) -join ' ') } }", ct).ConfigureAwait(false);
            return r.Succeeded ? r.StandardOutput : null;
        }

        /// <summary>
        /// procrun's values that name files the service needs to start (the service exe, the JVM, the classpath, the
        /// working dirs): after repointing, each path they name inside the new install dir must exist there. A zip
        /// distribution ships no bundled JRE, for example: pointing Jvm at its jre\bin\server\jvm.dll would leave a
        /// service that cannot start, so nothing is changed and the message lists what is missing.
        /// </summary>
        internal static readonly string[] ProcrunPathValues = { "ImagePath", "Jvm", "Classpath", "StartPath", "StopPath", "StartImage", "StopImage", "LibraryPath" };

        /// <summary>The PowerShell that repoints the service's registry values from one install dir to another (exposed for the tests).</summary>
        internal string RepointScript(NodeInstallation installation, string from, string to) =>
            $"$from = {Q(from.TrimEnd('\\'))}; $to = {Q(to.TrimEnd('\\'))}; $checked = @({string.Join(", ", ProcrunPathValues.Select(Q))}); " +
            // The old dir as a whole path, any case (Windows paths are case-insensitive).
            "$rx = '(?i)' + [regex]::Escape($from) + '(?=[\\\\\";\\s]|$)'; $changes = @(); " +
            $"foreach ($k in {RegistryKeys(installation)}) {{ if (-not (Test-Path -LiteralPath $k)) {{ continue }}; foreach ($key in @(Get-Item -LiteralPath $k) + @(Get-ChildItem -LiteralPath $k -Recurse)) {{ " +
            "foreach ($n in $key.GetValueNames()) { $kind = [string]$key.GetValueKind($n); if ($kind -ne 'String' -and $kind -ne 'ExpandString' -and $kind -ne 'MultiString') { continue }; " +
            "$old = @($key.GetValue($n, $null, 'DoNotExpandEnvironmentNames')); $new = @($old | ForEach-Object { [regex]::Replace([string]$_, $rx, $to.Replace('$', '$$')) }); " +
            "if (($old -join \"`n\") -ceq ($new -join \"`n\")) { continue }; " +
            "$val = if ($kind -eq 'MultiString') { ,[string[]]$new } else { [string]$new[0] }; $changes += [pscustomobject]@{ Key = $key; Name = $n; Value = $val } } } }; " +
            // Every path a start-critical value names inside the new dir must exist there, before anything is written.
            "$missing = @(foreach ($c in $changes) { if ($checked -notcontains $c.Name) { continue }; foreach ($part in (@($c.Value) -join ';') -split ';') { " +
            "foreach ($m in [regex]::Matches($part, '(?i)' + [regex]::Escape($to) + '[^\"]*')) { $p = ($m.Value -split ' //| -')[0].Trim(); " +
            "if (-not (Test-Path -LiteralPath $p)) { '{0} names {1}' -f $c.Name, $p } } } }); " +
            "if ($missing.Count) { throw ('The service cannot be moved to ' + $to + ': ' + ($missing -join '; ') + '. The new install dir lacks what the service uses (an installer-bundled JRE? point Jvm at a JRE outside the install dir). Nothing was changed.') }; " +
            "foreach ($c in $changes) { Set-ItemProperty -LiteralPath $c.Key.PSPath -Name $c.Name -Value $c.Value }";

        public override async Task<string> RepointServiceAsync(NodeInstallation installation, string from, string to, CancellationToken ct)
        {
            var before = await ReadServiceDefinitionAsync(installation, ct).ConfigureAwait(false) ?? "";
            await RunCheckedAsync(RepointScript(installation, from, to), "update the Windows service definition", ct, errorId: "NodeServiceRepointFailed").ConfigureAwait(false);
            var after = await ReadServiceDefinitionAsync(installation, ct).ConfigureAwait(false) ?? "";
            return AssignmentFile.Diff("registry/" + (installation.ServiceName ?? Options.WindowsServiceName), before, after);
        }
    }

    /// <summary>
    /// What a step in one round trip (<see cref="NodeOps.StopAndWaitAsync"/>, <see cref="NodeOps.StartInOneTripAsync"/>)
    /// came to, from its line <c>BBZDU-&lt;STEP&gt; &lt;state&gt; &lt;pid&gt; &lt;exit code&gt;</c>.
    /// </summary>
    internal sealed class OneTripOutcome
    {
        private OneTripOutcome(string state, int pid, int exitCode, string output, string after)
        {
            State = state;
            Pid = pid;
            ExitCode = exitCode;
            Output = output;
            After = after;
        }

        /// <summary>Stop: not-running, exited or running (still, at the deadline). Start: running (already), failed, started or no-state.</summary>
        public string State { get; }
        public int Pid { get; }
        /// <summary>The stop's or start's own exit code (the script in bin/ or the service).</summary>
        public int ExitCode { get; }
        /// <summary>What the step's command wrote to stderr (its log's tail when it failed).</summary>
        public string Output { get; }
        /// <summary>What the script printed after its line (the start's: the home's state file when Bitbucket already runs).</summary>
        public string After { get; }

        internal static OneTripOutcome? Parse(ShellResult r, string step, params string[] states)
        {
            var tag = "BBZDU-" + step + " ";
            var text = r.StandardOutput.Replace("\r\n", "\n");
            var at = text.LastIndexOf(tag, StringComparison.Ordinal);
            if (r.ExitCode != 0 || at < 0 || (at > 0 && text[at - 1] != '\n')) return null;
            var end = text.IndexOf('\n', at);
            var parts = (end < 0 ? text.Substring(at) : text.Substring(at, end - at)).Trim().Split(' ');
            if (parts.Length != 4 || Array.IndexOf(states, parts[1]) < 0
                || !int.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)
                || !int.TryParse(parts[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var rc))
                return null;
            return new OneTripOutcome(parts[1], pid, rc, r.StandardError.Trim(), end < 0 ? "" : text.Substring(end + 1));
        }
    }
}
