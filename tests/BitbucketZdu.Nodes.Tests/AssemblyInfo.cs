// These tests drive a real sshd and POSIX install dirs: Linux (or macOS) only.
[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
