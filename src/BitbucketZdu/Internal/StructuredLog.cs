using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Security;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Core.LoadBalancers;

namespace BitbucketZdu.Internal
{
    /// <summary>
    /// The JSON-lines log behind -LogPath: one object per line with time (UTC, ISO 8601), kind (start, verbose, debug,
    /// warning, progress, output, error, http, lb-command, run, end), the command and a run id (an upgrade's: the report's RunId), and the kind's fields. Appends, so one
    /// file can hold many runs (a scheduled task's history). Thread-safe; every line is scrubbed by <see cref="Redactor"/>.
    /// </summary>
    internal sealed class StructuredLog
    {
        private readonly object _gate = new object();
        private readonly string _command;
        private volatile string _run;
        private readonly Redactor _redactor;
        private string? _lastProgress;

        /// <param name="runId">The id every line carries: the upgrade's run id where the command runs one (the report's RunId, the journal's).</param>
        public StructuredLog(string path, string command, Redactor redactor, string runId)
        {
            Path = path;
            _command = command;
            _redactor = redactor;
            _run = runId;
        }

        public string Path { get; }

        /// <summary>The run id of the lines written from now on.</summary>
        public string RunId => _run;

        /// <summary>
        /// A resumed upgrade continues the journal's run: from here on the lines carry that run's id, and a "run" line
        /// says which id the lines before had.
        /// </summary>
        public void ContinueRun(string runId)
        {
            var before = _run;
            if (before == runId) return;
            _run = runId;
            TryWrite("run", ("message", $"This command continues run {runId} of the journal (the lines before carry {before})."), ("previous", before));
        }

        /// <summary>Writes one entry; text values are scrubbed. Throws IOException/UnauthorizedAccessException only from the first write (the caller turns it into an error).</summary>
        public void Write(string kind, IEnumerable<KeyValuePair<string, object?>> fields)
        {
            var line = new StringBuilder();
            using (var buffer = new MemoryStream())
            {
                using (var json = new Utf8JsonWriter(buffer))
                {
                    json.WriteStartObject();
                    json.WriteString("time", DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
                    json.WriteString("kind", kind);
                    json.WriteString("command", _command);
                    json.WriteString("run", _run);
                    foreach (var f in fields)
                    {
                        switch (f.Value)
                        {
                            case null: json.WriteNull(f.Key); break;
                            case int i: json.WriteNumber(f.Key, i); break;
                            case long l: json.WriteNumber(f.Key, l); break;
                            case double d: json.WriteNumber(f.Key, Math.Round(d, 1)); break;
                            case bool b: json.WriteBoolean(f.Key, b); break;
                            case string[] list:
                                json.WriteStartArray(f.Key);
                                foreach (var item in list) json.WriteStringValue(_redactor.Scrub(item));
                                json.WriteEndArray();
                                break;
                            default: json.WriteString(f.Key, _redactor.Scrub(f.Value.ToString() ?? string.Empty)); break;
                        }
                    }
                    json.WriteEndObject();
                }
                line.Append(Encoding.UTF8.GetString(buffer.ToArray()));
            }
            line.Append('\n');
            lock (_gate)
                File.AppendAllText(Path, line.ToString(), new UTF8Encoding(false));
        }

        /// <summary>Like <see cref="Write"/> but never throws: a log that stops working must not stop an upgrade.</summary>
        public void TryWrite(string kind, params (string Key, object? Value)[] fields)
        {
            try
            {
                Write(kind, fields.Select(f => new KeyValuePair<string, object?>(f.Key, f.Value)));
            }
            catch (Exception)
            {
                // Disk full or file deleted mid-run: the streams still carry everything.
            }
        }

        public void Message(string kind, string message) => TryWrite(kind, ("message", message));

        /// <summary>Progress entries only when activity/status/operation change, so a wait loop does not flood the log.</summary>
        public void Progress(string activity, string? status, string? operation, int percent, bool completed)
        {
            var key = activity + "|" + status + "|" + operation + "|" + completed;
            lock (_gate)
            {
                if (key == _lastProgress) return;
                _lastProgress = key;
            }
            TryWrite("progress", ("activity", activity), ("status", status), ("operation", operation), ("percent", percent), ("completed", completed));
        }

        public void Http(ZduRequestRecord r) =>
            TryWrite("http", ("method", r.Method), ("host", r.Host), ("path", r.Path), ("status", r.Status),
                ("ms", (long)Math.Round(r.Elapsed.TotalMilliseconds)), ("failure", r.Failure));

        /// <summary>
        /// A load-balancer call: HTTP ones as "http" entries (like /rest/zdu calls, plus provider and lb), HAProxy runtime
        /// commands and nginx runs as "lb-command" entries (provider, lb, host, command, result, ms).
        /// </summary>
        public void LoadBalancerCall(LoadBalancerCallRecord r)
        {
            var ms = (long)Math.Round(r.Elapsed.TotalMilliseconds);
            if (r.Kind == LoadBalancerCallKind.Http)
                TryWrite("http", ("method", r.Method), ("host", r.Host), ("path", r.Path), ("status", r.Status), ("ms", ms),
                    ("failure", r.Failure), ("provider", r.Provider), ("lb", r.LoadBalancer));
            else
                TryWrite("lb-command", ("provider", r.Provider), ("lb", r.LoadBalancer), ("host", r.Host), ("command", r.Command),
                    ("result", r.Result), ("ms", ms), ("failure", r.Failure));
        }

        public void Error(ErrorRecord record) =>
            TryWrite("error", ("errorId", record.FullyQualifiedErrorId), ("category", record.CategoryInfo.Category.ToString()),
                ("message", record.Exception?.Message ?? record.ToString()), ("target", record.TargetObject?.ToString()),
                ("recommendedAction", record.ErrorDetails?.RecommendedAction));
    }

    /// <summary>
    /// Removes secrets from log text: the exact secrets this invocation was given (passwords of bound credentials,
    /// secure strings, and their Basic-auth forms), Authorization/Bearer values, user info in URLs, and secret-looking
    /// query or key=value pairs.
    /// </summary>
    internal sealed class Redactor
    {
        private const string Mask = "***";
        private static readonly Regex[] Patterns =
        {
            new Regex(@"(?i)(authorization\s*[:=]\s*)(basic|bearer|negotiate|ntlm)?\s*[^\s,;""']+", RegexOptions.Compiled),
            new Regex(@"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*", RegexOptions.Compiled),
            new Regex(@"(?i)([a-z][a-z0-9+.\-]*://)[^/@\s]+@", RegexOptions.Compiled),
            new Regex(@"(?i)\b(password|passwd|pwd|pass|token|access_token|refresh_token|id_token|secret|client_secret|apikey|api_key|accountkey|sig|signature|sas|key)(\s*[=:]\s*)(""[^""]*""|'[^']*'|[^&\s;,""']+)", RegexOptions.Compiled),
        };

        private readonly string[] _secrets;

        public Redactor(IEnumerable<string> secrets) =>
            _secrets = secrets.Where(s => !string.IsNullOrEmpty(s) && s.Length >= 3).Distinct().OrderByDescending(s => s.Length).ToArray();

        public string Scrub(string text)
        {
            if (string.IsNullOrEmpty(text)) return text;
            foreach (var secret in _secrets)
                text = text.Replace(secret, Mask);
            text = Patterns[0].Replace(text, m => m.Groups[1].Value + Mask);
            text = Patterns[1].Replace(text, m => m.Groups[1].Value + " " + Mask);
            text = Patterns[2].Replace(text, m => m.Groups[1].Value + Mask + "@");
            text = Patterns[3].Replace(text, m => m.Groups[1].Value + m.Groups[2].Value + Mask);
            return text;
        }

        /// <summary>The secrets among a cmdlet's bound parameters (credentials, secure strings, load-balancer passwords), in plain and Basic-auth form.</summary>
        public static Redactor ForParameters(IDictionary bound)
        {
            var secrets = new List<string>();
            foreach (var value in bound.Values)
                Collect((value as PSObject)?.BaseObject ?? value, secrets);
            return new Redactor(secrets);
        }

        private static void Collect(object? value, List<string> secrets)
        {
            switch (value)
            {
                case PSCredential credential when credential.Password is not null:
                    AddSecret(credential.UserName, Reveal(credential.Password), secrets);
                    break;
                case SecureString secure:
                    AddSecret(null, Reveal(secure), secrets);
                    break;
                case LoadBalancerDescription lb when lb.Password is not null:
                    AddSecret(lb.UserName, Reveal(lb.Password), secrets);
                    break;
                case IEnumerable list when !(value is string):
                    foreach (var item in list) Collect((item as PSObject)?.BaseObject ?? item, secrets);
                    break;
            }
        }

        private static void AddSecret(string? user, string plain, List<string> secrets)
        {
            secrets.Add(plain);
            secrets.Add(Convert.ToBase64String(Encoding.UTF8.GetBytes((user ?? string.Empty) + ":" + plain)));
            secrets.Add(Uri.EscapeDataString(plain));
        }

        private static string Reveal(SecureString secure) => new NetworkCredential(string.Empty, secure).Password;
    }
}
