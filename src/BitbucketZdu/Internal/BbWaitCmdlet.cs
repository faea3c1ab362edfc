using System;
using System.Management.Automation;
using BitbucketZdu.Core.Api;

namespace BitbucketZdu.Internal
{
    /// <summary>The deadline and adaptive polling parameters shared by the Wait-Bb* cmdlets.</summary>
    public abstract class BbWaitCmdlet : BbClusterCmdlet
    {
        /// <summary>Seconds to wait before the wait fails with ZduWaitTimeout.</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int TimeoutSec { get; set; } = 600;

        /// <summary>Seconds between the first polls; the interval grows to -MaxPollIntervalSec while nothing changes.</summary>
        [Parameter]
        [ValidateRange(0.01, 3600)]
        public double PollIntervalSec { get; set; } = 1;

        /// <summary>The longest interval between polls, in seconds.</summary>
        [Parameter]
        [ValidateRange(0.01, 3600)]
        public double MaxPollIntervalSec { get; set; } = 10;

        protected TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSec);

        protected ZduPollOptions Poll => new ZduPollOptions
        {
            InitialInterval = TimeSpan.FromSeconds(PollIntervalSec),
            MaxInterval = TimeSpan.FromSeconds(Math.Max(PollIntervalSec, MaxPollIntervalSec)),
        };
    }
}
