using System.Collections.Generic;

namespace BitbucketZdu.Core.LoadBalancers.AwsElb
{
    internal sealed class AwsElbKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.AwsElb;
        public override string EndpointHelp => "the target group's AWS region (eu-west-1)";
        public override string BackendHelp => "the ALB or NLB target group's ARN (arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>); one entry per group (HTTP 7990, SSH 7999)";
        public override IReadOnlyList<LoadBalancerSetting> Settings { get; } = new[]
        {
            LoadBalancerSetting.Url("EndpointUrl", "Another ELBv2 endpoint than the region's (a VPC interface endpoint, a test stub): the AWS CLI's --endpoint-url.", (d, v) => d.Options["EndpointUrl"] = v.ToString()),
            LoadBalancerSetting.Text("Targets", "The group's targets as id:port, comma-separated (i-0abc:7990, 10.0.1.5:7990): listed even while deregistered, so a resumed run finds them and the limit of members out counts them.", (d, v) => d.Options["Targets"] = v),
            LoadBalancerSetting.Text("Profile", "The AWS CLI named profile (--profile: ~/.aws/config and ~/.aws/credentials, SSO, assume-role); without it the CLI's default chain (environment, default profile, SSO, container or instance role).", (d, v) => d.Options["Profile"] = v),
            LoadBalancerSetting.Text("CliPath", "The AWS CLI v2 executable (default: aws on PATH; Debian/Ubuntu package awscli, or AWS's installer).", (d, v) => d.Options["CliPath"] = v),
        };
        public override LoadBalancerSecret? Secret { get; } = new LoadBalancerSecret(
            "user name = the access key id, password = the secret access key (for temporary credentials: the secret, a space, the session token); given to the AWS CLI through its environment only; without it the CLI's own credential chain is used",
            (d, user, password) => { d.UserName = user; d.Password = password; });
        public override string TemplateSettings => "Endpoint = 'eu-west-1'; Backend = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/bitbucket-http/0123456789abcdef'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new AwsElbLoadBalancer(description);
    }
}
