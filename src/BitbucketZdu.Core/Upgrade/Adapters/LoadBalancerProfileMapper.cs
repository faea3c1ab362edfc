using System;
using System.Collections.Generic;
using System.Linq;
using BitbucketZdu.Core.LoadBalancers;
using BitbucketZdu.Core.Upgrade.Profile;

namespace BitbucketZdu.Core.Upgrade.Adapters
{
    /// <summary>
    /// Turns a profile's <c>LoadBalancers[i]</c> entry into a provider description through its kind's
    /// <see cref="LoadBalancerKindDescriptor"/>: the common settings (<see cref="LoadBalancerKinds.CommonSettings"/>) and
    /// the kind's own. Settings never hold secrets; the credential comes from the caller (-LoadBalancerCredential, or
    /// the Automation credential asset named by <c>CredentialAsset</c>, resolved by the cmdlets).
    /// </summary>
    public static class LoadBalancerProfileMapper
    {
        public static LoadBalancerDescription ToDescription(LoadBalancerProfile profile, LoadBalancerCredential? credential = null)
        {
            string? Get(string key) => profile.Settings.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v!.Trim() : null;
            BbException Bad(string key, string why) =>
                new BbException("ProfileInvalidLoadBalancer", BbErrorCategory.InvalidData, $"{profile.Place}.Settings.{key}: {why}", profile.Place);

            var kind = LoadBalancerKinds.Find(profile.Kind)
                ?? throw new BbException("ProfileInvalidLoadBalancer", BbErrorCategory.InvalidData, $"{profile.Place}.Kind: '{profile.Kind}' is not one of {LoadBalancerKinds.Names}.", profile.Place);
            var endpoint = Get("Endpoint") ?? Get("AdminSocket")
                ?? throw Bad("Endpoint", $"required: {kind.EndpointHelp}.");
            var backend = Get("Backend") ?? throw Bad("Backend", $"required: {kind.BackendHelp}.");
            var d = new LoadBalancerDescription(kind.Kind, endpoint.Split(',').Select(e => e.Trim()), backend);
            foreach (var setting in kind.AllSettings)
            {
                if (Get(setting.Name) is not string text) continue;
                try
                {
                    setting.Apply(d, text);
                }
                catch (FormatException ex)
                {
                    throw Bad(setting.Name, ex.Message);
                }
            }
            if (credential is not null)
            {
                if (kind.Secret is null)
                    throw new BbException("LoadBalancerCredentialNotUsed", BbErrorCategory.InvalidArgument,
                        $"{profile.Place} ('{profile.Name}') is {kind.Name}, which takes no credential; remove it from -LoadBalancerCredential.", profile.Name);
                kind.Secret.Apply(d, credential.UserName, credential.Password);
            }
            kind.Validate(d, $"{profile.Place} ('{profile.Name}')");
            return d;
        }

        /// <summary>The settings the profile entry's kind does not know, for the reader (a typo must not silently drop a setting).</summary>
        public static IEnumerable<string> UnknownSettings(string kind, IEnumerable<string> keys)
        {
            var descriptor = LoadBalancerKinds.Find(kind);
            if (descriptor is null) return Array.Empty<string>();
            var known = new HashSet<string>(descriptor.AllSettings.Select(s => s.Name), StringComparer.OrdinalIgnoreCase);
            return keys.Where(k => !known.Contains(k)).ToArray();
        }
    }
}
