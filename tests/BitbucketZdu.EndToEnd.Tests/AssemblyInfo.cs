// Real node processes, POSIX install dirs, haproxy/nginx/sshd: Linux (or macOS) only.
[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
// Each test starts a 3-node cluster and a load balancer; two at a time is what a loaded 2-core machine sustains.
[assembly: CollectionBehavior(MaxParallelThreads = 2)]
