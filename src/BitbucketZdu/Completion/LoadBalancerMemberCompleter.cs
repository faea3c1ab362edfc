using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using BitbucketZdu.Core.LoadBalancers;

namespace BitbucketZdu.Completion
{
    /// <summary>
    /// Completes load-balancer member names by asking the load balancer of -LoadBalancer on the command line (a
    /// variable holding New-BbLoadBalancer's output). Nothing is offered when -LoadBalancer is absent or the load
    /// balancer does not answer within two seconds.
    /// </summary>
    public sealed class LoadBalancerMemberCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var value = fakeBoundParameters?.Contains("LoadBalancer") == true ? fakeBoundParameters["LoadBalancer"] : null;
            var description = (value as PSObject)?.BaseObject as LoadBalancerDescription ?? value as LoadBalancerDescription;
            if (description is null) return Array.Empty<CompletionResult>();
            try
            {
                using var provider = LoadBalancerFactory.Create(description);
                using var timeout = new CancellationTokenSource(NodeCompleter.AskFor);
                var task = System.Threading.Tasks.Task.Run(() => provider.GetMembersAsync(timeout.Token), timeout.Token);
                if (!task.Wait(NodeCompleter.AskFor + TimeSpan.FromMilliseconds(500))) return Array.Empty<CompletionResult>();
                return CompletionText.Match(wordToComplete, task.Result.Select(m => (m.Name, $"{m.Name}: {m.State}, {m.Health}, {m.Address}")));
            }
            catch (Exception)
            {
                return Array.Empty<CompletionResult>();
            }
        }
    }
}
