using System.Security.Cryptography;
using BitbucketZdu.TestSupport;

namespace BitbucketZdu.Nodes.Tests;

/// <summary>
/// Writes a Bitbucket distribution with the simulator's documented layout (archive root atlassian-bitbucket-X.Y.Z/,
/// bin/ scripts, app/WEB-INF/lib/bitbucket-api-X.Y.Z.jar, pid in $BITBUCKET_HOME/bitbucket.pid, /status on
/// server.port). The "webapp" is a socat responder that answers /status with RUNNING, so stop/start/roll back run
/// against real processes. It also notes what it was started with, for assertions.
/// </summary>
public static class FixtureDist
{
    public static string RootName(string version) => "atlassian-bitbucket-" + version;

    /// <summary>Writes an unpacked install dir.</summary>
    public static string WriteTree(string parent, string version, int paddingBytes = 0)
    {
        var root = Path.Combine(parent, RootName(version));
        var bin = Path.Combine(root, "bin");
        var lib = Path.Combine(root, "app", "WEB-INF", "lib");
        Directory.CreateDirectory(bin);
        Directory.CreateDirectory(lib);
        File.WriteAllText(Path.Combine(lib, $"bitbucket-api-{version}.jar"), "not really a jar " + version);
        if (paddingBytes > 0) File.WriteAllBytes(Path.Combine(root, "app", "padding.bin"), RandomNumberGenerator.GetBytes(paddingBytes));
        Sh(bin, "set-bitbucket-home.sh", "#!/usr/bin/env bash\n# Do not wrap the value in quotes.\nBITBUCKET_HOME=\nexport BITBUCKET_HOME\n");
        Sh(bin, "set-bitbucket-user.sh", "#!/usr/bin/env bash\nBITBUCKET_USER=\nexport BITBUCKET_USER\n");
        Sh(bin, "set-jre-home.sh", "#!/usr/bin/env bash\nJRE_HOME=\nexport JRE_HOME\n");
        Sh(bin, "_start-webapp.sh", """
            #!/usr/bin/env bash
            JVM_MINIMUM_MEMORY=512m
            JVM_MAXIMUM_MEMORY=1g
            JVM_SUPPORT_RECOMMENDED_ARGS=
            PRGDIR=$(cd "$(dirname "$0")" && pwd)
            INSTALL_DIR=$(cd "$PRGDIR/.." && pwd)
            . "$PRGDIR/set-jre-home.sh"
            PIDFILE="$BITBUCKET_HOME/bitbucket.pid"
            if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "already running" >&2; exit 1; fi
            PORT=$(sed -n 's/^server.port=//p' "$BITBUCKET_HOME/bitbucket.properties")
            setsid socat TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork SYSTEM:"$PRGDIR/status-responder.sh" >>"$BITBUCKET_HOME/node.log" 2>&1 </dev/null &
            echo $! > "$PIDFILE"
            printf 'installDir=%s\nargs=%s\nJVM_MAXIMUM_MEMORY=%s\nJRE_HOME=%s\n' "$INSTALL_DIR" "$*" "$JVM_MAXIMUM_MEMORY" "$JRE_HOME" > "$BITBUCKET_HOME/started-with"

            """);
        Sh(bin, "status-responder.sh", "#!/bin/sh\nprintf 'HTTP/1.0 200 OK\\r\\nContent-Type: application/json\\r\\n\\r\\n{\"state\":\"RUNNING\"}'\n");
        Sh(bin, "start-bitbucket.sh", """
            #!/usr/bin/env bash
            PRGDIR=$(cd "$(dirname "$0")" && pwd)
            for arg in "$@"; do case "$arg" in --no-search) ;; *) echo "Usage: $0 [--no-search]" >&2; exit 2 ;; esac; done
            if [ -z "${BITBUCKET_HOME:-}" ]; then . "$PRGDIR/set-bitbucket-home.sh"; fi
            if [ -z "${BITBUCKET_HOME:-}" ] || [ ! -d "$BITBUCKET_HOME" ]; then echo "BITBUCKET_HOME is not set" >&2; exit 1; fi
            export BITBUCKET_HOME
            exec "$PRGDIR/_start-webapp.sh" "$@"

            """);
        Sh(bin, "stop-bitbucket.sh", """
            #!/usr/bin/env bash
            PRGDIR=$(cd "$(dirname "$0")" && pwd)
            if [ -z "${BITBUCKET_HOME:-}" ]; then . "$PRGDIR/set-bitbucket-home.sh"; fi
            PIDFILE="$BITBUCKET_HOME/bitbucket.pid"
            [ -f "$PIDFILE" ] || exit 0
            PID=$(cat "$PIDFILE")
            kill -TERM "$PID" 2>/dev/null
            END=$((SECONDS + 10))
            while kill -0 "$PID" 2>/dev/null; do [ "$SECONDS" -ge "$END" ] && exit 1; sleep 0.1; done
            rm -f "$PIDFILE"

            """);
        foreach (var bat in new[] { "set-bitbucket-home", "set-bitbucket-user", "set-jre-home", "_start-webapp", "start-bitbucket", "stop-bitbucket" })
            File.WriteAllText(Path.Combine(bin, bat + ".bat"), "@echo off\r\n");
        return root;
    }

    /// <summary>Writes atlassian-bitbucket-X.Y.Z.tar.gz (or .zip) and its .sha256 into <paramref name="outputDir"/>.</summary>
    public static async Task<string> WriteArchiveAsync(string outputDir, string version, bool zip = false, int paddingBytes = 0)
    {
        var work = Directory.CreateTempSubdirectory("bbzdu-dist-").FullName;
        try
        {
            WriteTree(work, version, paddingBytes);
            Directory.CreateDirectory(outputDir);
            var archive = Path.Combine(outputDir, RootName(version) + (zip ? ".zip" : ".tar.gz"));
            var (code, output) = zip
                ? await ExternalProcess.RunAsync(RequiredTool.Find("zip"), new[] { "-qr", archive, RootName(version) }, TimeSpan.FromSeconds(30), work)
                : await ExternalProcess.RunAsync("tar", new[] { "-czf", archive, "-C", work, RootName(version) }, TimeSpan.FromSeconds(30));
            if (code != 0) throw new InvalidOperationException("archive failed: " + output);
            await File.WriteAllTextAsync(archive + ".sha256", Sha256(archive) + "  " + Path.GetFileName(archive) + "\n");
            return archive;
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
    }

    private static void Sh(string dir, string name, string text)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllText(p, text.Replace("\r\n", "\n"));
        File.SetUnixFileMode(p, (UnixFileMode)Convert.ToInt32("755", 8));
    }
}
