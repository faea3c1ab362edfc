// The simulator tests start real node processes; on a 2-core machine they run one class at a time so that heartbeat
// and start-up timings stay meaningful.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
