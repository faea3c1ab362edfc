using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Adapters
{
    /// <summary>
    /// Turns a profile's <c>LoadBalancers[i]</c> entry into a provider description. Settings (never secrets):
    /// <c>Endpoint</c> (or <c>AdminSocket</c>; several comma-separated for an HAProxy HA pair; the NGINX config file;
    /// the NGINX Plus API or Apache balancer-manager URL; the Azure gateway's resource id), <c>Backend</c>,
    /// <c>MatchBy</c>, <c>NginxCommand</c>, <c>NginxPidFile</c>, <c>SkipCertificateCheck</c>, <c>Authentication</c>,
    /// <c>TenantId</c>, <c>ClientId</c>, <c>ManagementEndpoint</c>, <c>ApiVersion</c>.
    /// </summary>
    public static class LoadBalancerProfileMapper
    {
        public static readonly IReadOnlyList<string> KnownSettings = new[]
        {
            "Endpoint", "AdminSocket", "Backend", "MatchBy", "NginxCommand", "NginxPidFile", "SkipCertificateCheck",
            "Authentication", "TenantId", "ClientId", "ManagementEndpoint", "ApiVersion",
        };

        public static LoadBalancerDescription ToDescription(LoadBalancerProfile profile)
        {
            string? Get(string key) => profile.Settings.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v!.Trim() : null;
            BbException Bad(string key, string why) =>
                new BbException("ProfileInvalidLoadBalancer", BbErrorCategory.InvalidData, $"{profile.Place}.Settings.{key}: {why}", profile.Place);

            if (!Enum.TryParse<LoadBalancerKind>(profile.Kind, ignoreCase: true, out var kind))
                throw Bad("Kind", $"'{profile.Kind}' is not one of {string.Join(", ", Enum.GetNames(typeof(LoadBalancerKind)))}.");
            var endpoint = Get("Endpoint") ?? Get("AdminSocket")
                ?? throw Bad("Endpoint", "required: the admin socket(s), config file, API URL or resource id of the load balancer.");
            var backend = Get("Backend") ?? throw Bad("Backend", "required: the backend, upstream, balancer or pool that serves Bitbucket.");
            var d = new LoadBalancerDescription(kind, endpoint.Split(',').Select(e => e.Trim()), backend);
            if (Get("MatchBy") is string match)
                d.MatchBy = Enum.TryParse<MemberMatch>(match, true, out var m) ? m : throw Bad("MatchBy", $"'{match}' is not one of {string.Join(", ", Enum.GetNames(typeof(MemberMatch)))}.");
            if (Get("NginxCommand") is string cmd) d.NginxCommand = cmd;
            if (Get("NginxPidFile") is string pid) d.NginxPidFile = pid;
            if (Get("SkipCertificateCheck") is string skip) d.SkipCertificateCheck = bool.TryParse(skip, out var b) ? b : throw Bad("SkipCertificateCheck", "true or false.");
            if (Get("Authentication") is string auth)
                d.AzureAuthentication = Enum.TryParse<AzureAuthentication>(auth, true, out var a) ? a : throw Bad("Authentication", $"one of {string.Join(", ", Enum.GetNames(typeof(AzureAuthentication)))}.");
            if (Get("TenantId") is string tenant) d.TenantId = tenant;
            if (Get("ClientId") is string client) d.ClientId = client;
            if (Get("ManagementEndpoint") is string mgmt)
                d.ManagementEndpoint = Uri.TryCreate(mgmt, UriKind.Absolute, out var u) ? u : throw Bad("ManagementEndpoint", "an absolute URL.");
            if (Get("ApiVersion") is string api) d.AzureApiVersion = api;
            return d;
        }
    }
}
