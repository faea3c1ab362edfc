using System;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BitbucketZdu.Core.LoadBalancers.HAProxy
{
    /// <summary>
    /// HAProxy's runtime API (the stats socket) in non-interactive mode: connect, send one line of commands separated
    /// by ';', read until HAProxy closes the connection. Unix socket (<c>unix:///path</c> or a bare path) or TCP
    /// (<c>tcp://host:port</c>, <c>ipv4@host:port</c>).
    /// </summary>
    public sealed class HAProxyRuntimeClient
    {
        public HAProxyRuntimeClient(string endpoint, TimeSpan timeout)
        {
            Endpoint = endpoint;
            Timeout = timeout;
            var e = endpoint.Trim();
            if (e.StartsWith("unix://", StringComparison.OrdinalIgnoreCase)) SocketPath = e.Substring("unix://".Length);
            else if (e.StartsWith("/", StringComparison.Ordinal)) SocketPath = e;
            else
            {
                foreach (var prefix in new[] { "tcp://", "ipv4@", "ipv6@" })
                    if (e.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) e = e.Substring(prefix.Length);
                e = e.TrimEnd('/');
                var colon = e.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(e.Substring(colon + 1), out var port) || port <= 0 || port > 65535)
                    throw new BbException("HAProxyInvalidEndpoint", BbErrorCategory.InvalidArgument,
                        $"'{endpoint}' is not an HAProxy admin socket. Use unix:///run/haproxy.sock (or the path) or tcp://host:port.", endpoint);
                Host = e.Substring(0, colon).Trim('[', ']');
                Port = port;
            }
        }

        public string Endpoint { get; }
        public TimeSpan Timeout { get; }
        public string? SocketPath { get; }
        public string? Host { get; }
        public int Port { get; }

        /// <summary>Runs the commands and returns HAProxy's whole reply.</summary>
        public async Task<string> ExecuteAsync(string commands, CancellationToken cancellationToken)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(Timeout);
            Socket socket = SocketPath is not null
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
            using (socket)
            using (cts.Token.Register(() => socket.Dispose()))
            {
                try
                {
                    if (SocketPath is not null) await socket.ConnectAsync(new UnixSocketEndPoint(SocketPath)).ConfigureAwait(false);
                    else await socket.ConnectAsync(Host!, Port).ConfigureAwait(false);
                    using var stream = new NetworkStream(socket, ownsSocket: false);
                    var request = Encoding.ASCII.GetBytes(commands.TrimEnd('\n') + "\n");
                    await stream.WriteAsync(request, 0, request.Length, cts.Token).ConfigureAwait(false);
                    socket.Shutdown(SocketShutdown.Send);
                    using var reader = new StreamReader(stream, Encoding.UTF8);
                    return await reader.ReadToEndAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when ((ex is SocketException || ex is IOException || ex is ObjectDisposedException) && !cancellationToken.IsCancellationRequested)
                {
                    if (cts.IsCancellationRequested)
                        throw new TimeoutException($"The HAProxy admin socket {Endpoint} did not answer within {Timeout.TotalSeconds:0.#} s.");
                    throw;
                }
                catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
        }

        /// <summary>Escapes ';' and '\' in a backend or server name for the command line.</summary>
        public static string Escape(string value) => value.Replace("\\", "\\\\").Replace(";", "\\;");
    }
}
