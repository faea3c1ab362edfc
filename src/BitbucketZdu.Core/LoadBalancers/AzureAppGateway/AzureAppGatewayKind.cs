using System.Collections.Generic;

namespace BitbucketZdu.Core.LoadBalancers.AzureAppGateway
{
    internal sealed class AzureAppGatewayKind : LoadBalancerKindDescriptor
    {
        public override LoadBalancerKind Kind => LoadBalancerKind.AzureAppGateway;
        public override string EndpointHelp => "the gateway's resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/applicationGateways/<name>)";
        public override string BackendHelp => "the gateway's backend pool";
        public override IReadOnlyList<LoadBalancerSetting> Settings { get; } = new[]
        {
            LoadBalancerSetting.Enum<AzureAuthentication>("Authentication", "ManagedIdentity (default), ServicePrincipal (a client secret) or Token (a bearer token).", (d, v) => d.AzureAuthentication = v),
            LoadBalancerSetting.Text("TenantId", "The Entra ID tenant of the service principal.", (d, v) => d.TenantId = v),
            LoadBalancerSetting.Text("ClientId", "The service principal's application id, or a user-assigned managed identity's client id.", (d, v) => d.ClientId = v),
            LoadBalancerSetting.Url("ManagementEndpoint", "The Resource Manager base URL (sovereign clouds).", (d, v) => d.ManagementEndpoint = v),
            LoadBalancerSetting.Url("AuthorityEndpoint", "The Entra ID authority base URL (sovereign clouds).", (d, v) => d.AuthorityEndpoint = v),
            LoadBalancerSetting.Text("ApiVersion", "The Microsoft.Network api-version.", (d, v) => d.AzureApiVersion = v),
        };
        public override LoadBalancerSecret? Secret { get; } = new LoadBalancerSecret(
            "ServicePrincipal: user name = application id (or empty to keep Settings.ClientId), password = client secret; Token: password = the bearer token",
            (d, user, password) =>
            {
                if (d.AzureAuthentication == AzureAuthentication.Token) d.Token = password;
                else
                {
                    if (!string.IsNullOrWhiteSpace(user)) d.ClientId = user.Trim();
                    d.ClientSecret = password;
                }
            },
            d => d.AzureAuthentication switch
            {
                AzureAuthentication.ServicePrincipal => "Authentication ServicePrincipal needs the service principal's client secret.",
                AzureAuthentication.Token => "Authentication Token needs a bearer token.",
                _ => null,
            });
        public override string TemplateSettings => "Endpoint = '/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/applicationGateways/<name>'; Backend = 'bitbucket-pool'; Authentication = 'ManagedIdentity'";

        public override void Validate(LoadBalancerDescription description, string where)
        {
            base.Validate(description, where);
            if (description.AzureAuthentication == AzureAuthentication.ServicePrincipal && (string.IsNullOrEmpty(description.TenantId) || string.IsNullOrEmpty(description.ClientId)))
                throw new BbException("LoadBalancerMissingCredential", BbErrorCategory.InvalidArgument,
                    $"{where}: Authentication ServicePrincipal needs TenantId and the application id (Settings.ClientId, or the credential's user name).", where);
        }

        protected override bool HasCredential(LoadBalancerDescription d) => d.AzureAuthentication == AzureAuthentication.Token ? d.Token is not null : d.ClientSecret is not null;
        public override ILoadBalancer Create(LoadBalancerDescription description) => new AzureAppGatewayLoadBalancer(description);
    }
}
