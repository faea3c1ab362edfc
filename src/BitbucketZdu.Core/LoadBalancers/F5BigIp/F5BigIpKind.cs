using System.Collections.Generic;

namespace BitbucketZdu.Core.LoadBalancers.F5BigIp
{
    internal sealed class F5BigIpKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.F5BigIp;
        public override string EndpointHelp => "the management URL of the BIG-IP (https://bigip1.example.com); both units of an HA pair, comma-separated";
        public override string BackendHelp => "the LTM pool: 'bitbucket' (partition Common), '/Partition/pool' or '~Partition~pool'";
        public override bool MultipleEndpoints => true;
        public override IReadOnlyList<LoadBalancerSetting> Settings { get; } = new[]
        {
            LoadBalancerSetting.Text("Partition", "The pool's partition when Backend names none (default Common).", (d, v) => d.Options["Partition"] = v),
            LoadBalancerSetting.Text("LoginProvider", "The login provider of /mgmt/shared/authn/login (default tmos; e.g. a RADIUS or LDAP provider's name).", (d, v) => d.Options["LoginProvider"] = v),
            LoadBalancerSetting.Boolean("ConfigSync", "true (default): the HA pair syncs its configuration, so only the active unit is changed; false: every unit is changed.", (d, v) => d.Options["ConfigSync"] = v ? "true" : "false"),
            LoadBalancerSetting.Text("CaCertificateFile", "A PEM file with the CA that signed the devices' management certificates: only a certificate that chains to it (and names the host) is accepted.", (d, v) => d.Options["CaCertificateFile"] = v),
        };
        public override LoadBalancerSecret? Secret { get; } = new LoadBalancerSecret(
            "a BIG-IP user (role Operator or higher on the partition) and its password, exchanged for an X-F5-Auth-Token",
            (d, user, password) => { d.UserName = user; d.Password = password; },
            _ => "BIG-IP iControl REST needs a user name and password.");
        public override string TemplateSettings => "Endpoint = 'https://bigip1.example.com, https://bigip2.example.com'; Backend = '/Common/bitbucket'";
        public override ILoadBalancer Create(LoadBalancerDescription description) => new F5BigIpLoadBalancer(description);
    }
}
