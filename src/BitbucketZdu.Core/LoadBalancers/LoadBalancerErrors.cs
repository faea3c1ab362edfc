using System;
using System.Collections.Generic;
using System.Linq;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>The load-balancer area's errors (ErrorIds <c>LoadBalancer*</c> and per kind, e.g. <c>HAProxyPermissionDenied</c>).</summary>
    public static class LoadBalancerErrors
    {
        public static BbException MemberNotFound(LoadBalancerDescription lb, string name, IReadOnlyList<LoadBalancerMember> members) =>
            new BbException("LoadBalancerMemberNotFound", BbErrorCategory.ObjectNotFound,
                $"{lb.Kind} backend '{lb.Backend}' at {lb.EndpointText} has no member '{name}'." +
                (members.Count > 0 ? $" Its members are: {string.Join(", ", members.Select(m => m.Name + (m.Address is null || m.Address == m.Name ? "" : " (" + m.Address + ")")))}." : "") +
                " Check the node name, or map nodes to members with -MemberMap. Nothing was changed.", name);

        public static BbException BackendNotFound(LoadBalancerDescription lb, string where, string? known = null) =>
            new BbException("LoadBalancerBackendNotFound", BbErrorCategory.ObjectNotFound,
                $"{lb.Kind} at {where} has no backend '{lb.Backend}'." + (string.IsNullOrEmpty(known) ? "" : $" Known: {known}.") +
                " Check -Backend. Nothing was changed.", lb.Backend);

        public static BbException Unreachable(LoadBalancerDescription lb, string where, Exception inner) =>
            new BbException("LoadBalancerUnreachable", BbErrorCategory.ConnectionError,
                $"Cannot reach the {lb.Kind} control endpoint {where}: {inner.Message} Check that it runs and that the endpoint is right. Nothing was changed.", where, inner);

        public static BbException PermissionDenied(LoadBalancerDescription lb, string errorId, string where, string detail) =>
            new BbException(errorId, BbErrorCategory.PermissionDenied, $"{lb.Kind} at {where} refused the change: {detail} Nothing was changed.", where);

        public static BbException VerifyFailed(LoadBalancerDescription lb, string name, MemberAdminState expected, LoadBalancerMember after) =>
            new BbException("LoadBalancerVerifyFailed", BbErrorCategory.InvalidResult,
                $"{lb.Kind} backend '{lb.Backend}' member '{name}' should now be {expected} but the load balancer reports {after.State}" +
                (after.Status is null ? "" : $" ('{after.Status}')") + ". The change did not take effect.", name);

        public static BbException Protocol(LoadBalancerDescription lb, string errorId, string where, string detail) =>
            new BbException(errorId, BbErrorCategory.ProtocolError, $"{lb.Kind} at {where}: {detail}", where);
    }
}
