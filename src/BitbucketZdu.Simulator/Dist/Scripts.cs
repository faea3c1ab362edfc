namespace BitbucketZdu.Simulator.Dist;

/// <summary>
/// The bin/ scripts of a simulated distribution. They mirror the real product's scripts where admins look
/// (BITBUCKET_HOME, BITBUCKET_USER, JRE_HOME, JVM settings, --no-search) and start the simulated node instead of Tomcat.
/// </summary>
internal static class Scripts
{
    public const string SetBitbucketHome = """
        #!/usr/bin/env bash
        # One way to set the BITBUCKET_HOME path is here via this variable. Simply set a valid path like
        # /var/atlassian/application-data/bitbucket. You can of course set it outside in the command terminal;
        # that will also work (a BITBUCKET_HOME in the environment wins over this file).
        #
        # WARNING: DO NOT wrap the BITBUCKET_HOME value in quotes when setting it here, because when it is
        # referenced in other scripts, it will be double-quoted.
        #
        # The BITBUCKET_HOME path must not contain spaces, and must not be the same directory as, or a
        # subdirectory of, the Bitbucket installation directory.
        #
        BITBUCKET_HOME=
        export BITBUCKET_HOME

        """;

    public const string SetBitbucketUser = """
        #!/usr/bin/env bash
        # START_BITBUCKET_AS_USER: the user Bitbucket runs as. When set and the scripts are run by root, they switch
        # to this user; run by anyone else, they refuse. Leave empty to run as the current user.
        BITBUCKET_USER=
        export BITBUCKET_USER

        """;

    public const string SetJreHome = """
        #!/usr/bin/env bash
        # The Java runtime Bitbucket uses. The simulated node does not need Java; the value is reported only.
        JRE_HOME=
        export JRE_HOME

        """;

    public const string StartWebapp = """
        #!/usr/bin/env bash
        # Starts the Bitbucket webapp in the background (called by start-bitbucket.sh). In this simulated
        # distribution the webapp is the bbsim node program; see docs/simulator.md.
        # -----------------------------------------------------------------------------------
        # The following 2 settings control the minimum and maximum memory allocated to the Java virtual machine.
        # For larger instances, the maximum amount will need to be increased.
        JVM_MINIMUM_MEMORY=512m
        JVM_MAXIMUM_MEMORY=1g

        # Occasionally Atlassian Support may recommend that you set some specific JVM arguments. Use this variable.
        JVM_SUPPORT_RECOMMENDED_ARGS=
        # -----------------------------------------------------------------------------------
        PRGDIR=$(cd "$(dirname "$0")" && pwd)
        INSTALL_DIR=$(cd "$PRGDIR/.." && pwd)
        if [ -z "${BITBUCKET_HOME:-}" ]; then . "$PRGDIR/set-bitbucket-home.sh"; fi
        if [ -z "${BITBUCKET_HOME:-}" ] || [ ! -d "$BITBUCKET_HOME" ]; then
            echo "BITBUCKET_HOME is not set or does not exist. Use bin/start-bitbucket.sh." >&2
            exit 1
        fi
        . "$PRGDIR/set-jre-home.sh"
        . "$PRGDIR/bbsim-runtime.sh"
        export BITBUCKET_HOME JRE_HOME JVM_MINIMUM_MEMORY JVM_MAXIMUM_MEMORY JVM_SUPPORT_RECOMMENDED_ARGS

        PIDFILE="$BITBUCKET_HOME/bitbucket.pid"
        if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "Bitbucket is already running with this home (pid $(cat "$PIDFILE")). Stop it first with bin/stop-bitbucket.sh." >&2
            exit 1
        fi
        if [ ! -f "$BBSIM_DLL" ]; then
            echo "The simulator program '$BBSIM_DLL' is missing. Rebuild this distribution with 'dotnet bbsim.dll dist' or set BBSIM_DLL." >&2
            exit 1
        fi
        VERSION=$(ls "$INSTALL_DIR/app/WEB-INF/lib" | sed -n 's/^bitbucket-api-\(.*\)\.jar$/\1/p')
        mkdir -p "$BITBUCKET_HOME/log"
        LOG="$BITBUCKET_HOME/log/atlassian-bitbucket.log"
        SETSID=
        if command -v setsid >/dev/null 2>&1; then SETSID=setsid; fi
        $SETSID "$BBSIM_DOTNET" "$BBSIM_DLL" node --install "$INSTALL_DIR" --home "$BITBUCKET_HOME" "$@" >>"$LOG" 2>&1 </dev/null &
        PID=$!
        echo "$PID" > "$PIDFILE"
        echo "Starting Bitbucket $VERSION (simulated) as pid $PID with BITBUCKET_HOME=$BITBUCKET_HOME; log: $LOG"

        """;

    public const string StartBitbucket = """
        #!/usr/bin/env bash
        # Starts Bitbucket in the background and returns at once: bin/start-bitbucket.sh [--no-search]
        # (--no-search: do not start the bundled search server; Data Center nodes use a remote search.)
        PRGDIR=$(cd "$(dirname "$0")" && pwd)
        ARGS=()
        for arg in "$@"; do
            case "$arg" in
                --no-search) ARGS+=("--no-search") ;;
                *) echo "Usage: $0 [--no-search]" >&2; exit 2 ;;
            esac
        done
        if [ -z "${BITBUCKET_HOME:-}" ]; then . "$PRGDIR/set-bitbucket-home.sh"; fi
        if [ -z "${BITBUCKET_HOME:-}" ]; then
            echo "BITBUCKET_HOME is not set. Set it in $PRGDIR/set-bitbucket-home.sh or in the environment, then run this script again." >&2
            exit 1
        fi
        if [ ! -d "$BITBUCKET_HOME" ]; then
            echo "BITBUCKET_HOME '$BITBUCKET_HOME' does not exist. Create it (with its bitbucket.properties) or fix set-bitbucket-home.sh." >&2
            exit 1
        fi
        export BITBUCKET_HOME
        . "$PRGDIR/set-bitbucket-user.sh"
        if [ -n "${BITBUCKET_USER:-}" ] && [ "$(id -un)" != "$BITBUCKET_USER" ]; then
            if [ "$(id -u)" = "0" ]; then
                exec su -s /bin/bash "$BITBUCKET_USER" -c "BITBUCKET_HOME='$BITBUCKET_HOME' '$PRGDIR/start-bitbucket.sh' ${ARGS[*]}"
            fi
            echo "Bitbucket must be started as '$BITBUCKET_USER' (set-bitbucket-user.sh); you are '$(id -un)'." >&2
            exit 1
        fi
        if [ "${#ARGS[@]}" -eq 0 ]; then
            echo "The bundled search server is not simulated; starting the webapp only (as with --no-search)."
        fi
        exec "$PRGDIR/_start-webapp.sh" "${ARGS[@]}"

        """;

    public const string StopBitbucket = """
        #!/usr/bin/env bash
        # Stops Bitbucket gracefully: the node goes TERMINATING, in-flight requests get the grace period
        # (graceful.shutdown.timeout, 30 s by default) to finish, then the process exits.
        # Waits for the process for the grace period plus 10 s (or BITBUCKET_STOP_WAIT seconds); exits 1 if it is still running.
        PRGDIR=$(cd "$(dirname "$0")" && pwd)
        if [ -z "${BITBUCKET_HOME:-}" ]; then . "$PRGDIR/set-bitbucket-home.sh"; fi
        if [ -z "${BITBUCKET_HOME:-}" ]; then
            echo "BITBUCKET_HOME is not set. Set it in $PRGDIR/set-bitbucket-home.sh or in the environment." >&2
            exit 1
        fi
        PIDFILE="$BITBUCKET_HOME/bitbucket.pid"
        if [ ! -f "$PIDFILE" ]; then
            echo "Bitbucket is not running (no $PIDFILE)."
            exit 0
        fi
        PID=$(cat "$PIDFILE")
        # Alive and not a zombie (a detached node is reaped by init, which may take a while).
        alive() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != "Z" ]; }
        if ! alive "$PID"; then
            echo "Bitbucket is not running (stale pid $PID); removing $PIDFILE."
            rm -f "$PIDFILE"
            exit 0
        fi
        GRACE=30
        if [ -f "$BITBUCKET_HOME/bbsim-grace-seconds" ]; then GRACE=$(cat "$BITBUCKET_HOME/bbsim-grace-seconds"); fi
        WAIT=${BITBUCKET_STOP_WAIT:-$((GRACE + 10))}
        echo "Stopping Bitbucket (pid $PID); waiting up to $WAIT s."
        kill -TERM "$PID"
        END=$((SECONDS + WAIT))
        while alive "$PID"; do
            if [ "$SECONDS" -ge "$END" ]; then
                echo "Bitbucket (pid $PID) did not stop within $WAIT s and is still running. Kill it with: kill -9 $PID" >&2
                exit 1
            fi
            sleep 0.1
        done
        rm -f "$PIDFILE"
        echo "Stopped Bitbucket (pid $PID)."

        """;

    public static string Runtime(string dotnet, string dll) => $"""
        #!/usr/bin/env bash
        # Simulator only (a real Bitbucket has no such file): where the simulated node's program is. Baked in when
        # this distribution was built; the environment variables BBSIM_DOTNET and BBSIM_DLL override it.
        BBSIM_DOTNET=${"{"}BBSIM_DOTNET:-{ShQuote(dotnet)}{"}"}
        BBSIM_DLL=${"{"}BBSIM_DLL:-{ShQuote(dll)}{"}"}

        """;

    // Windows twins: same variables, same places to customise.
    public const string SetBitbucketHomeBat = """
        @echo off
        rem One way to set the BITBUCKET_HOME path is here via this variable. A BITBUCKET_HOME in the environment wins.
        rem Do not wrap the value in quotes. It must not be inside the installation directory.
        set BITBUCKET_HOME=

        """;

    public const string SetBitbucketUserBat = """
        @echo off
        rem The user Bitbucket runs as (informational on Windows: services run as their configured account).
        set BITBUCKET_USER=

        """;

    public const string SetJreHomeBat = """
        @echo off
        rem The Java runtime Bitbucket uses. The simulated node does not need Java.
        set JRE_HOME=

        """;

    public const string StartWebappBat = """
        @echo off
        rem Starts the Bitbucket webapp (the simulated node) in the background. Called by start-bitbucket.bat.
        rem -----------------------------------------------------------------------------------
        set JVM_MINIMUM_MEMORY=512m
        set JVM_MAXIMUM_MEMORY=1g
        set JVM_SUPPORT_RECOMMENDED_ARGS=
        rem -----------------------------------------------------------------------------------
        call "%~dp0set-jre-home.bat"
        call "%~dp0bbsim-runtime.bat"
        if not exist "%BITBUCKET_HOME%\log" mkdir "%BITBUCKET_HOME%\log"
        start "Bitbucket" /b "%BBSIM_DOTNET%" "%BBSIM_DLL%" node --install "%~dp0.." --home "%BITBUCKET_HOME%" --pid-file "%BITBUCKET_HOME%\bitbucket.pid" %* >> "%BITBUCKET_HOME%\log\atlassian-bitbucket.log" 2>&1
        echo Starting Bitbucket (simulated) with BITBUCKET_HOME=%BITBUCKET_HOME%

        """;

    public const string StartBitbucketBat = """
        @echo off
        rem Starts Bitbucket in the background: bin\start-bitbucket.bat [--no-search]
        if "%BITBUCKET_HOME%"=="" call "%~dp0set-bitbucket-home.bat"
        if "%BITBUCKET_HOME%"=="" (
            echo BITBUCKET_HOME is not set. Set it in %~dp0set-bitbucket-home.bat or in the environment. 1>&2
            exit /b 1
        )
        if not exist "%BITBUCKET_HOME%\" (
            echo BITBUCKET_HOME '%BITBUCKET_HOME%' does not exist. 1>&2
            exit /b 1
        )
        call "%~dp0_start-webapp.bat" %*

        """;

    public const string StopBitbucketBat = """
        @echo off
        rem Stops Bitbucket gracefully (TERMINATING, in-flight requests finish within the grace period, then exit).
        if "%BITBUCKET_HOME%"=="" call "%~dp0set-bitbucket-home.bat"
        if "%BITBUCKET_HOME%"=="" (
            echo BITBUCKET_HOME is not set. 1>&2
            exit /b 1
        )
        call "%~dp0bbsim-runtime.bat"
        "%BBSIM_DOTNET%" "%BBSIM_DLL%" stop-node --home "%BITBUCKET_HOME%"

        """;

    public static string RuntimeBat(string dotnet, string dll) => $"""
        @echo off
        rem Simulator only: where the simulated node's program is (baked in at dist time; the environment overrides it).
        if "%BBSIM_DOTNET%"=="" set "BBSIM_DOTNET={dotnet}"
        if "%BBSIM_DLL%"=="" set "BBSIM_DLL={dll}"

        """;

    public static string ShQuote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
