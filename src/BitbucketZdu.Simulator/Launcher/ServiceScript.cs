namespace BitbucketZdu.Simulator.Launcher;

/// <summary>
/// "bbsim service": an init.d-style <c>atlbitbucket</c> script like the installer's, running a node "as a service"
/// (start|stop|restart|status) from a given install dir and home, with --no-search as the vendor procedure says.
/// </summary>
public static class ServiceScript
{
    public static string Write(string installDir, string home, string outputDir, string? user)
    {
        Directory.CreateDirectory(outputDir);
        var path = Path.Combine(outputDir, "atlbitbucket");
        File.WriteAllText(path, Render(Path.GetFullPath(installDir), Path.GetFullPath(home), user ?? ""));
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    public static string Render(string installDir, string home, string user) => $$"""
        #!/bin/bash
        ### BEGIN INIT INFO
        # Provides:          atlbitbucket
        # Required-Start:    $remote_fs $syslog
        # Required-Stop:     $remote_fs $syslog
        # Default-Start:     2 3 4 5
        # Default-Stop:      0 1 6
        # Short-Description: Atlassian Bitbucket (simulated by bbsim)
        ### END INIT INFO
        # After a rolling upgrade, point BITBUCKET_INSTALLDIR at the new installation directory.
        BITBUCKET_INSTALLDIR="{{installDir}}"
        BITBUCKET_HOME="{{home}}"
        RUN_AS_USER="{{user}}"
        export BITBUCKET_HOME

        run() {
            if [ -n "$RUN_AS_USER" ] && [ "$(id -un)" != "$RUN_AS_USER" ]; then
                su -s /bin/bash "$RUN_AS_USER" -c "BITBUCKET_HOME='$BITBUCKET_HOME' $1"
            else
                bash -c "$1"
            fi
        }

        status() {
            if [ -f "$BITBUCKET_HOME/bitbucket.pid" ] && kill -0 "$(cat "$BITBUCKET_HOME/bitbucket.pid")" 2>/dev/null; then
                echo "atlbitbucket is running (pid $(cat "$BITBUCKET_HOME/bitbucket.pid")) from $BITBUCKET_INSTALLDIR"
                return 0
            fi
            echo "atlbitbucket is not running"
            return 3
        }

        case "$1" in
            start)   run "'$BITBUCKET_INSTALLDIR/bin/start-bitbucket.sh' --no-search" ;;
            stop)    run "'$BITBUCKET_INSTALLDIR/bin/stop-bitbucket.sh'" ;;
            restart) run "'$BITBUCKET_INSTALLDIR/bin/stop-bitbucket.sh'" && run "'$BITBUCKET_INSTALLDIR/bin/start-bitbucket.sh' --no-search" ;;
            status)  status ;;
            *)       echo "Usage: $0 {start|stop|restart|status}"; exit 1 ;;
        esac

        """;
}
