namespace BitbucketZdu.Core.Api
{
    /// <summary>Hypermedia relations on the cluster resource: present exactly when the action is allowed now.</summary>
    public static class ZduLinkRelations
    {
        public const string Self = "self";
        public const string Start = "start";
        public const string Cancel = "cancel";
        public const string Approve = "approve";
        public const string RetryUpgrade = "retryUpgrade";
    }
}
