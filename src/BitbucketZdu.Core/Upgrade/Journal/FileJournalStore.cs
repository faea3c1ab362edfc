using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BitbucketZdu.Core.Timing;

namespace BitbucketZdu.Core.Upgrade.Journal
{
    /// <summary>
    /// Journals as JSON-lines files in a folder: <c>&lt;cluster&gt;.journal.jsonl</c> plus <c>&lt;cluster&gt;.lock</c>
    /// holding the owner's host and process id. Each append is flushed to disk before it returns.
    /// </summary>
    public sealed class FileJournalStore : IJournalStore
    {
        private readonly Func<int, bool> _isProcessAlive;
        private readonly SemaphoreSlim _write = new SemaphoreSlim(1, 1);

        public FileJournalStore(string directory, Func<int, bool>? isProcessAlive = null)
        {
            Directory = directory;
            _isProcessAlive = isProcessAlive ?? IsProcessAlive;
        }

        public string Directory { get; }

        /// <summary>Flush each line to the disk before AppendAsync returns (default). Off only where durability is not under test.</summary>
        public bool FlushToDisk { get; set; } = true;

        /// <summary>The per-user default folder: LocalApplicationData/BitbucketZdu/journal.</summary>
        public static string DefaultDirectory
        {
            get
            {
                var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
                if (string.IsNullOrEmpty(root)) root = Path.GetTempPath();
                return Path.Combine(root, "BitbucketZdu", "journal");
            }
        }

        public string JournalFile(string cluster) => Path.Combine(Directory, cluster + ".journal.jsonl");
        public string LockFile(string cluster) => Path.Combine(Directory, cluster + ".lock");
        public string Describe(string cluster) => JournalFile(cluster);

        public async Task<IReadOnlyList<JournalEntry>> ReadAsync(string cluster, CancellationToken cancellationToken)
        {
            var path = JournalFile(cluster);
            if (!File.Exists(path)) return new List<JournalEntry>();
            string text;
            using (var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), Encoding.UTF8))
                text = await reader.ReadToEndAsync().ConfigureAwait(false);
            return JournalLines.Parse(text, path, "move it away");
        }

        public async Task AppendAsync(string cluster, JournalEntry entry, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(JournalLines.Format(entry));
            await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                System.IO.Directory.CreateDirectory(Directory);
                using var fs = new FileStream(JournalFile(cluster), FileMode.Append, FileAccess.Write, FileShare.Read);
                await fs.WriteAsync(bytes, 0, bytes.Length, CancellationToken.None).ConfigureAwait(false);
                fs.Flush(FlushToDisk);
            }
            finally
            {
                _write.Release();
            }
        }

        // A lock file names a process on this host, so a dead holder is seen at once: nothing to wait for, nobody to tell.
        public async Task<IJournalLock> AcquireLockAsync(string cluster, LockOwner owner, System.Action<string>? waiting, CancellationToken cancellationToken)
        {
            System.IO.Directory.CreateDirectory(Directory);
            var path = LockFile(cluster);
            LockOwner? stale = null;
            try
            {
                // A stale lock removed is tried again at once (3 attempts in all): only a run racing us to the file makes it fail.
                return await Poller.System.RetryAsync<IJournalLock>(_ =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    try
                    {
                        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                        {
                            var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new LockFileContent { Host = owner.Host, Pid = owner.Pid, Since = owner.Since }, JournalLines.Json));
                            fs.Write(bytes, 0, bytes.Length);
                            fs.Flush(true);
                        }
                        return Task.FromResult<IJournalLock>(new FileLock(path, owner, stale));
                    }
                    catch (IOException) when (File.Exists(path))
                    {
                        var holder = ReadOwner(path);
                        if (holder is not null && !IsStale(holder))
                            throw new BbException("JournalLocked", BbErrorCategory.ResourceExists,
                                $"Another run holds the lock of cluster '{cluster}': {holder} ({path}). Wait for it to finish. If that run is gone "
                                + "(killed on another machine), delete the lock file and run again with -Resume.", path);
                        stale = holder ?? new LockOwner("unknown", 0);
                        try { File.Delete(path); } catch (IOException) { }
                        throw new StaleLockRemoved();
                    }
                }, e => e is StaleLockRemoved, 3, AtOnce, null, cancellationToken).ConfigureAwait(false);
            }
            catch (StaleLockRemoved)
            {
                throw new BbException("JournalLocked", BbErrorCategory.ResourceExists,
                    $"Could not take the lock {path}: another run keeps creating it. Wait for it to finish.", path);
            }
        }

        private static readonly PollSchedule AtOnce = new PollSchedule(TimeSpan.Zero, TimeSpan.Zero, 1);

        private sealed class StaleLockRemoved : Exception { }

        private bool IsStale(LockOwner holder) =>
            string.Equals(holder.Host, Environment.MachineName, StringComparison.OrdinalIgnoreCase) && !_isProcessAlive(holder.Pid);

        private static LockOwner? ReadOwner(string path)
        {
            try
            {
                var c = JsonSerializer.Deserialize<LockFileContent>(File.ReadAllText(path), JournalLines.Json);
                return c?.Host is null ? null : new LockOwner(c.Host, c.Pid) { Since = c.Since };
            }
            catch (Exception ex) when (ex is IOException || ex is JsonException)
            {
                return null;
            }
        }

        private static bool IsProcessAlive(int pid)
        {
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                return !p.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }

        private sealed class LockFileContent
        {
            public string? Host { get; set; }
            public int Pid { get; set; }
            public DateTimeOffset Since { get; set; }
        }

        private sealed class FileLock : IJournalLock
        {
            private readonly string _path;
            private readonly LockOwner _owner;
            private int _released;

            public FileLock(string path, LockOwner owner, LockOwner? tookOverFrom)
            {
                _path = path;
                _owner = owner;
                TookOverFrom = tookOverFrom;
            }

            public LockOwner? TookOverFrom { get; }

            /// <summary>Deletes the lock file if it is still ours: local file work, done synchronously.</summary>
            public ValueTask DisposeAsync()
            {
                if (Interlocked.Exchange(ref _released, 1) == 1) return default;
                var holder = ReadOwner(_path);
                if (holder is not null && holder.Pid == _owner.Pid && holder.Host == _owner.Host)
                {
                    try { File.Delete(_path); } catch (IOException) { }
                }
                return default;
            }
        }
    }
}
