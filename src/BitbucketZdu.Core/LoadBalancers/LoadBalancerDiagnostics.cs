using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>
    /// An ambient place for every call the load-balancer providers make in the current async flow (HTTP requests of
    /// NGINX Plus, Apache balancer-manager and Azure Resource Manager, HAProxy runtime API commands, nginx -t / reload),
    /// so a cmdlet can log them beside the /rest/zdu calls (<see cref="Api.ZduDiagnostics"/>):
    /// <c>using (LoadBalancerDiagnostics.ReportTo(record => log.LoadBalancerCall(record))) { ... }</c>.
    /// Records never hold headers, bodies, query strings or form values.
    /// </summary>
    public static class LoadBalancerDiagnostics
    {
        private static readonly AsyncLocal<Action<LoadBalancerCallRecord>?> Current = new AsyncLocal<Action<LoadBalancerCallRecord>?>();

        public static IDisposable ReportTo(Action<LoadBalancerCallRecord> sink)
        {
            var previous = Current.Value;
            Current.Value = sink;
            return new Api.ZduDiagnostics.Restore(() => Current.Value = previous);
        }

        internal static void Completed(LoadBalancerCallRecord record)
        {
            try
            {
                Current.Value?.Invoke(record);
            }
            catch (Exception)
            {
                // A broken log sink must not fail the call it reports on.
            }
        }

        internal static void Http(LoadBalancerDescription d, string method, Uri uri, int? status, Stopwatch watch, Exception? failure) =>
            Completed(new LoadBalancerCallRecord(LoadBalancerCallKind.Http, d.Kind.ToString(), d.DisplayName, watch.Elapsed, failure?.GetType().Name)
            {
                Method = method,
                Host = uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped),
                Path = uri.AbsolutePath,
                Status = status,
            });

        internal static void Command(LoadBalancerDescription d, LoadBalancerCallKind kind, string target, string command, string? result, Stopwatch watch, Exception? failure) =>
            Completed(new LoadBalancerCallRecord(kind, d.Kind.ToString(), d.DisplayName, watch.Elapsed, failure?.GetType().Name)
            {
                Host = target,
                Command = command,
                Result = result is null ? null : Summarize(result),
            });

        /// <summary>The first line of a reply, at most 200 characters; "ok" for an empty one.</summary>
        internal static string Summarize(string reply)
        {
            var lines = reply.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (lines.Count == 0) return "ok";
            var first = lines[0].Length > 200 ? lines[0].Substring(0, 200) + "…" : lines[0];
            return lines.Count == 1 ? first : $"{first} (+{lines.Count - 1} line(s))";
        }
    }

    public enum LoadBalancerCallKind
    {
        /// <summary>An HTTP request (NGINX Plus API, Apache balancer-manager, Azure Resource Manager and its token endpoint).</summary>
        Http,
        /// <summary>An HAProxy runtime API command line.</summary>
        Runtime,
        /// <summary>A process run on the load-balancer host (nginx -t, nginx -s reload).</summary>
        Process,
    }

    /// <summary>One call to a load balancer as logs see it.</summary>
    public sealed class LoadBalancerCallRecord
    {
        public LoadBalancerCallRecord(LoadBalancerCallKind kind, string provider, string loadBalancer, TimeSpan elapsed, string? failure)
        {
            Kind = kind;
            Provider = provider;
            LoadBalancer = loadBalancer;
            Elapsed = elapsed;
            Failure = failure;
        }

        public LoadBalancerCallKind Kind { get; }
        /// <summary>HAProxy, Nginx, NginxPlus, Apache, AzureAppGateway.</summary>
        public string Provider { get; }
        /// <summary>The load balancer's display name (kind, endpoints, backend).</summary>
        public string LoadBalancer { get; }
        /// <summary>Http: scheme://host:port (no user info). Runtime: the admin socket. Process: the host it ran on.</summary>
        public string? Host { get; set; }
        public string? Method { get; set; }
        /// <summary>Http: the path, without query string.</summary>
        public string? Path { get; set; }
        public int? Status { get; set; }
        /// <summary>Runtime/Process: the command, e.g. "set server bitbucket/node-1 state drain" or "nginx -t".</summary>
        public string? Command { get; set; }
        /// <summary>Runtime/Process: "ok", the first line of the reply, or "exit N: first line of its output".</summary>
        public string? Result { get; set; }
        public TimeSpan Elapsed { get; }
        /// <summary>The exception type when no answer came.</summary>
        public string? Failure { get; }
    }
}
