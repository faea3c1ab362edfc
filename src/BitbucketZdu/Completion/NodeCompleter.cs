using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using BitbucketZdu.Core.Api;
using BitbucketZdu.Internal;
using BitbucketZdu.Models;

namespace BitbucketZdu.Completion
{
    /// <summary>
    /// Completes node names (or node ids, for a parameter whose name ends in "Id") from the cluster of -Connection on
    /// the command line or the default connection (Connect-BbCluster). One GET /rest/zdu/cluster per connection is
    /// cached for a few seconds so repeated Tab presses stay instant; nothing is offered (and nothing is written)
    /// when not connected or the cluster does not answer within two seconds.
    /// </summary>
    public sealed class NodeCompleter : IArgumentCompleter
    {
        internal static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
        internal static readonly TimeSpan AskFor = TimeSpan.FromSeconds(2);

        private static readonly ConcurrentDictionary<IZduClient, (DateTime At, IReadOnlyList<ZduNode> Nodes)> Cache =
            new ConcurrentDictionary<IZduClient, (DateTime, IReadOnlyList<ZduNode>)>();

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var client = ClientOf(fakeBoundParameters);
            if (client is null) return Array.Empty<CompletionResult>();
            var nodes = NodesOf(client);
            var wantIds = parameterName.EndsWith("Id", StringComparison.OrdinalIgnoreCase);
            return CompletionText.Match(wordToComplete, nodes.Select(n => wantIds
                ? (n.Id ?? string.Empty, $"{n.Id}: {n.Name} ({n.StateText ?? n.State.ToString()}, {n.Version})")
                : (n.Name ?? string.Empty, $"{n.Name}: {n.StateText ?? n.State.ToString()}, {n.Version}, {n.Address}")));
        }

        /// <summary>The nodes of the client's cluster: from the cache when fresh, else one short GET; empty on any failure.</summary>
        internal static IReadOnlyList<ZduNode> NodesOf(IZduClient client)
        {
            if (Cache.TryGetValue(client, out var hit) && DateTime.UtcNow - hit.At < CacheFor) return hit.Nodes;
            try
            {
                using var timeout = new CancellationTokenSource(AskFor);
                var task = System.Threading.Tasks.Task.Run(() => client.GetClusterAsync(timeout.Token), timeout.Token);
                if (!task.Wait(AskFor + TimeSpan.FromMilliseconds(500))) return Array.Empty<ZduNode>();
                var nodes = task.Result.Nodes;
                Cache[client] = (DateTime.UtcNow, nodes);
                return nodes;
            }
            catch (Exception)
            {
                return Array.Empty<ZduNode>(); // completion never fails loudly: no connection, wrong password, timeout
            }
        }

        internal static void ClearCache() => Cache.Clear();

        private static IZduClient? ClientOf(IDictionary? fakeBoundParameters)
        {
            if (fakeBoundParameters is not null && fakeBoundParameters.Contains("Connection"))
            {
                var value = fakeBoundParameters["Connection"];
                if ((value as PSObject)?.BaseObject is BbConnection wrapped) return wrapped.Client;
                if (value is BbConnection c) return c.Client;
            }
            return ConnectionStore.Current?.Client;
        }
    }
}
