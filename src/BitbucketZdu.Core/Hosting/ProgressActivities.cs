namespace BitbucketZdu.Core.Hosting
{
    /// <summary>
    /// The progress activity ids of the engine, in one place: PowerShell shows one bar per id, so two operations that
    /// report at the same time need different ids, and a child names its parent's.
    /// </summary>
    public static class ProgressActivities
    {
        /// <summary>The top bar of a run: preflight, then the rolling upgrade's steps.</summary>
        public const int Run = 1;

        /// <summary>A wait for a node's state inside a run (child of <see cref="Run"/>).</summary>
        public const int NodeWait = 2;

        /// <summary>A load-balancer drain or health wait (LoadBalancerOptions.ProgressActivityId's default).</summary>
        public const int LoadBalancerChange = 4100;

        /// <summary>Node steps number their instances upwards from here, so parallel nodes get bars of their own.</summary>
        public const int NodeStepsBase = 5000;

        // ZduWaiter derives its id from the activity text (above these, below 100001): waits with different texts
        // do not share a bar.
    }
}
