using System;
using System.Collections.Generic;

namespace BitbucketZdu.Core.Nodes
{
    /// <summary>How Bitbucket is started and stopped on a node.</summary>
    public enum NodeRunMode
    {
        /// <summary>bin/start-bitbucket.sh and bin/stop-bitbucket.sh (or the .bat twins) run by hand.</summary>
        BinScripts,
        /// <summary>A systemd unit (atlbitbucket.service).</summary>
        Systemd,
        /// <summary>A SysV init script (/etc/init.d/atlbitbucket).</summary>
        InitScript,
        /// <summary>A Windows service (AtlassianBitbucket).</summary>
        WindowsService,
    }

    /// <summary>Where BITBUCKET_HOME came from.</summary>
    public enum NodeHomeSource
    {
        Unknown,
        Environment,
        SetHomeScript,
        ServiceDefinition,
    }

    /// <summary>What one node has installed and how it runs (Get-BbNodeInstallation).</summary>
    public sealed class NodeInstallation
    {
        public string HostName { get; set; } = "";
        public ShellPlatform Platform { get; set; }
        public string InstallDir { get; set; } = "";
        public string? Version { get; set; }
        public string? HomeDir { get; set; }
        public NodeHomeSource HomeSource { get; set; }
        public NodeRunMode RunMode { get; set; }
        /// <summary>The service's name (unit, init script or Windows service) when <see cref="RunMode"/> is not BinScripts.</summary>
        public string? ServiceName { get; set; }
        /// <summary>The file (or registry key) that defines the service.</summary>
        public string? ServiceDefinition { get; set; }
        /// <summary>The install dir the service definition points at (may differ from <see cref="InstallDir"/> mid-upgrade).</summary>
        public string? ServiceInstallDir { get; set; }
        /// <summary>Data Center start flags (e.g. --no-search) seen in the service definition or recorded at configure time.</summary>
        public IReadOnlyList<string> StartArguments { get; set; } = Array.Empty<string>();
        public string? RunAsUser { get; set; }
        public string? JreHome { get; set; }
        public long? FreeBytes { get; set; }
        public int HttpPort { get; set; } = 7990;
        /// <summary>server.context-path of bitbucket.properties without slashes ("bitbucket"), null for the root.</summary>
        public string? ContextPath { get; set; }
        public int? ProcessId { get; set; }
        public bool IsRunning { get; set; }
        /// <summary>Set when this directory was pre-staged by the module: the dir it was staged next to.</summary>
        public string? PreviousInstallDir { get; set; }
        public bool IsStaged { get; set; }
        public bool IsConfigured { get; set; }

        public override string ToString() => $"{HostName}:{InstallDir} ({Version ?? "?"}, {RunMode})";
    }

    /// <summary>The node steps, in upgrade order.</summary>
    public enum NodeStep
    {
        Discover,
        Stop,
        PreStage,
        Configure,
        Start,
        RollBack,
    }

    /// <summary>One setting or file carried from the old install dir into the new one.</summary>
    public sealed class NodeCarriedSetting
    {
        public NodeCarriedSetting(string file, string name, string? from, string? to)
        {
            File = file;
            Name = name;
            From = from;
            To = to;
        }

        /// <summary>The file in the new install dir, relative to it.</summary>
        public string File { get; }
        /// <summary>The variable (BITBUCKET_HOME, JVM_MAXIMUM_MEMORY, …), or "(file)" for a file copied whole, or "(service)".</summary>
        public string Name { get; }
        /// <summary>The new version's value before the change.</summary>
        public string? From { get; }
        public string? To { get; }

        public override string ToString() => $"{File}: {Name} {From ?? "(unset)"} -> {To ?? "(unset)"}";
    }

    /// <summary>What a node step did (every node cmdlet returns one per node).</summary>
    public sealed class NodeStepResult
    {
        public NodeStepResult(string hostName, NodeStep step)
        {
            HostName = hostName;
            Step = step;
        }

        public string HostName { get; }
        public NodeStep Step { get; }
        /// <summary>False when the step found its work already done (a re-run) or was skipped by -WhatIf.</summary>
        public bool Changed { get; set; }
        public string Summary { get; set; } = "";
        /// <summary>Each change made, in order, in words.</summary>
        public List<string> Changes { get; } = new List<string>();
        public List<NodeCarriedSetting> Carried { get; } = new List<NodeCarriedSetting>();
        /// <summary>A unified-style diff of the files the step edited (configure, roll back).</summary>
        public string? Diff { get; set; }
        /// <summary>The install dir the node runs (or will run) after this step: the new one after configure.</summary>
        public string? InstallDir { get; set; }
        /// <summary>The dir pre-staging created (pipe into Install-BbNodeVersion).</summary>
        public string? NewInstallDir { get; set; }
        /// <summary>The install dir the node ran before the upgrade (Undo-BbNodeUpgrade goes back to it).</summary>
        public string? PreviousInstallDir { get; set; }
        public string? Version { get; set; }
        public string? State { get; set; }
        public TimeSpan Duration { get; set; }

        public override string ToString() => $"{HostName} {Step}: {Summary}";
    }

    /// <summary>Paths and thresholds of node work; the defaults match a standard Linux install.</summary>
    public sealed class NodeStepOptions
    {
        /// <summary>Where a systemd unit for Bitbucket may live (first found wins).</summary>
        public IList<string> SystemdUnitPaths { get; } = new List<string>
        {
            "/etc/systemd/system/atlbitbucket.service", "/lib/systemd/system/atlbitbucket.service", "/usr/lib/systemd/system/atlbitbucket.service",
        };

        public string InitScriptPath { get; set; } = "/etc/init.d/atlbitbucket";
        public string WindowsServiceName { get; set; } = "AtlassianBitbucket";

        /// <summary>The pid file, relative to BITBUCKET_HOME.</summary>
        public string PidFile { get; set; } = "bitbucket.pid";

        /// <summary>Free space to keep on top of what the archive and its extraction need.</summary>
        public long MinimumFreeBytes { get; set; } = 512L * 1024 * 1024;

        /// <summary>Space needed per byte of archive (the archive itself plus its extracted tree).</summary>
        public double SpaceFactor { get; set; } = 3.0;

        /// <summary>Timeout of each single command on the node.</summary>
        public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(2);

        /// <summary>Timeout of an archive copy, fetch or extraction.</summary>
        public TimeSpan TransferTimeout { get; set; } = TimeSpan.FromMinutes(30);
    }

    /// <summary>The new version's archive for pre-staging: a file on this machine or a URL the node fetches.</summary>
    public sealed class NodeDistribution
    {
        public string? LocalPath { get; set; }
        public Uri? Uri { get; set; }
        /// <summary>The expected SHA-256 (hex). When absent: the .sha256 file beside the archive (local path or URL).</summary>
        public string? Sha256 { get; set; }
        /// <summary>The archive's file name (atlassian-bitbucket-X.Y.Z.tar.gz or .zip).</summary>
        public string FileName => System.IO.Path.GetFileName(LocalPath ?? Uri?.AbsolutePath ?? "");
    }

    public sealed class NodeStopOptions
    {
        public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);
        /// <summary>Kill the process (SIGKILL / Stop-Process -Force) when the graceful stop times out.</summary>
        public bool Kill { get; set; }
        /// <summary>Polled after the process exited until it returns true (e.g. the cluster shows the node OFFLINE).</summary>
        public Func<System.Threading.CancellationToken, System.Threading.Tasks.Task<bool>>? WaitUntilOffline { get; set; }
        /// <summary>The longest interval between two checks of the process (and of OFFLINE); they start at 100 ms and back off to it.</summary>
        public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(1);
    }

    public sealed class NodeStartOptions
    {
        public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);
        /// <summary>Start flags for the bin script (e.g. --no-search); default: those discovered or recorded at configure time.</summary>
        public IReadOnlyList<string>? StartArguments { get; set; }
        /// <summary>The status URL; default http://&lt;host&gt;:&lt;server.port&gt;/&lt;server.context-path&gt;/status.</summary>
        public Uri? StatusUri { get; set; }
        /// <summary>TLS trust and proxy of the /status probe (the connection's); null: system defaults.</summary>
        public BitbucketZdu.Core.Api.ZduTransport? Transport { get; set; }
        /// <summary>Only wait for the process to be started (no /status check).</summary>
        public bool NoWait { get; set; }
        /// <summary>The longest interval between two reads of /status; they start at 100 ms and back off to it.</summary>
        public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(1);
    }

    public sealed class NodeConfigureOptions
    {
        /// <summary>Variables carried from bin/_start-webapp.sh (.bat on Windows).</summary>
        public IList<string> JvmVariables { get; } = new List<string> { "JVM_MINIMUM_MEMORY", "JVM_MAXIMUM_MEMORY", "JVM_SUPPORT_RECOMMENDED_ARGS" };
        /// <summary>Further files (relative to the install dir) copied whole from the old install dir.</summary>
        public IList<string> Files { get; } = new List<string>();
        /// <summary>Start flags to record for bin-script starts; default: those discovered.</summary>
        public IReadOnlyList<string>? StartArguments { get; set; }
    }
}
