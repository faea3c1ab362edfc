using BitbucketZdu.Simulator.Balancer;

// bbsim: the simulated Bitbucket Data Center cluster's tools. Sub-commands dispatch here.
return args.Length > 0 && args[0] == "balancer"
    ? await BalancerCommand.RunAsync(args[1..])
    : Usage();

static int Usage()
{
    Console.Error.WriteLine("usage: bbsim balancer ...\n" + BalancerCommand.Usage);
    return 2;
}
