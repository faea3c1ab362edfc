namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// Cluster states as Bitbucket spells them, so what an admin reads in the docs is what they type
    /// (<c>-State READY_TO_UPGRADE</c>). <see cref="Unknown"/> stands for a value this version does not know;
    /// the raw text is kept beside it on the model.
    /// </summary>
    public enum ClusterState
    {
        Unknown = 0,
        STABLE,
        READY_TO_UPGRADE,
        MIXED,
        READY_TO_RUN_UPGRADE_TASKS,
        RUNNING_UPGRADE_TASKS,
        UPGRADE_TASKS_FAILED,
    }

    /// <summary>Node states as Bitbucket spells them; <see cref="Unknown"/> for values this version does not know.</summary>
    public enum NodeState
    {
        Unknown = 0,
        STARTING,
        ACTIVE,
        DRAINING,
        TERMINATING,
        OFFLINE,
        ERROR,
        RUNNING_FINALIZE_UPGRADE_TASKS,
        UPGRADE_TASKS_FAILED,
    }
}
