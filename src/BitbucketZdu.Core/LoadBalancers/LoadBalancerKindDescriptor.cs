using System;
using System.Collections.Generic;
using System.Linq;
using System.Security;

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>
    /// A setting a load-balancer kind takes in a cluster profile (<c>LoadBalancers[i].Settings</c>). Never a secret:
    /// secrets come through <see cref="LoadBalancerSecret"/>. <see cref="Apply"/> throws <see cref="FormatException"/>
    /// with the reason when the text is not valid.
    /// </summary>
    public sealed class LoadBalancerSetting
    {
        public LoadBalancerSetting(string name, string help, Action<LoadBalancerDescription, string> apply)
        {
            Name = name;
            Help = help;
            Apply = apply;
        }

        public string Name { get; }
        public string Help { get; }
        public Action<LoadBalancerDescription, string> Apply { get; }

        /// <summary>A setting whose text is parsed into <typeparamref name="T"/> (an enum) case-insensitively.</summary>
        public static LoadBalancerSetting Enum<T>(string name, string help, Action<LoadBalancerDescription, T> apply) where T : struct =>
            new LoadBalancerSetting(name, help, (d, text) => apply(d,
                System.Enum.TryParse<T>(text, true, out var v) && !int.TryParse(text, out _) ? v
                    : throw new FormatException($"'{text}' is not one of {string.Join(", ", System.Enum.GetNames(typeof(T)))}.")));

        public static LoadBalancerSetting Url(string name, string help, Action<LoadBalancerDescription, Uri> apply) =>
            new LoadBalancerSetting(name, help, (d, text) => apply(d,
                Uri.TryCreate(text, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps) ? u
                    : throw new FormatException($"'{text}' is not an absolute http(s) URL.")));

        public static LoadBalancerSetting Boolean(string name, string help, Action<LoadBalancerDescription, bool> apply) =>
            new LoadBalancerSetting(name, help, (d, text) => apply(d, bool.TryParse(text, out var b) ? b : throw new FormatException($"'{text}' is not true or false.")));

        public static LoadBalancerSetting Text(string name, string help, Action<LoadBalancerDescription, string> apply) => new LoadBalancerSetting(name, help, apply);
    }

    /// <summary>
    /// What the one credential of a kind (a user name and a secret: <c>-ApiCredential</c> of New-BbLoadBalancer,
    /// <c>-LoadBalancerCredential</c> of the upgrade cmdlets, an Automation credential asset) means for it.
    /// </summary>
    public sealed class LoadBalancerSecret
    {
        public LoadBalancerSecret(string help, Action<LoadBalancerDescription, string, SecureString> apply, Func<LoadBalancerDescription, string?>? requiredBecause = null)
        {
            Help = help;
            Apply = apply;
            RequiredBecause = requiredBecause ?? (_ => null);
        }

        /// <summary>What the user name and the password are, for help and messages.</summary>
        public string Help { get; }
        public Action<LoadBalancerDescription, string, SecureString> Apply { get; }
        /// <summary>Why the description cannot work without the credential (null: it can).</summary>
        public Func<LoadBalancerDescription, string?> RequiredBecause { get; }
    }

    /// <summary>
    /// Everything about one kind of load balancer in one place: its settings (with help), the credential it takes, how
    /// many endpoints, and its factory. New-BbLoadBalancer, the profile reader, the profile mapper and the profile
    /// template all read it, so a kind is its folder plus its member of <see cref="LoadBalancerKind"/>.
    /// </summary>
    public abstract class LoadBalancerKindDescriptor
    {
        public abstract LoadBalancerKind Kind { get; }
        public string Name => Kind.ToString();

        /// <summary>What the endpoint is for this kind (help and messages).</summary>
        public abstract string EndpointHelp { get; }

        /// <summary>What the backend is for this kind.</summary>
        public virtual string BackendHelp => "the backend that serves Bitbucket";

        /// <summary>Several endpoints (one per instance of an HA pair) or exactly one.</summary>
        public virtual bool MultipleEndpoints => false;

        /// <summary>The kind's own profile settings, beyond <see cref="LoadBalancerKinds.CommonSettings"/>.</summary>
        public virtual IReadOnlyList<LoadBalancerSetting> Settings => Array.Empty<LoadBalancerSetting>();

        /// <summary>The credential the kind takes, or null when it takes none.</summary>
        public virtual LoadBalancerSecret? Secret => null;

        /// <summary>
        /// Why this module cannot drain git over SSH (TCP, port 7999) through this kind, or null when a backend of the
        /// kind can carry it (a TCP backend, stream upstream, pool or target group listed in the profile). Preflight
        /// warns (<c>PreflightSshNotDrained</c>) when no load balancer of a profile can.
        /// </summary>
        public virtual string? SshNotCarried => null;

        /// <summary>The Settings of a profile template entry for this kind (PowerShell hashtable body).</summary>
        public abstract string TemplateSettings { get; }

        /// <summary>Creates the provider (which checks the endpoints' form).</summary>
        public abstract ILoadBalancer Create(LoadBalancerDescription description);

        /// <summary>Every setting a profile entry of this kind may carry: the common ones, then the kind's.</summary>
        public IEnumerable<LoadBalancerSetting> AllSettings => LoadBalancerKinds.CommonSettings.Concat(Settings);

        /// <summary>
        /// Checks a description before anything is created: endpoint count and a missing credential. Throws
        /// <see cref="BbException"/> <c>LoadBalancerInvalidEndpoint</c> / <c>LoadBalancerMissingCredential</c>.
        /// </summary>
        public virtual void Validate(LoadBalancerDescription description, string where)
        {
            if (!MultipleEndpoints && description.Endpoints.Count != 1)
                throw new BbException("LoadBalancerInvalidEndpoint", BbErrorCategory.InvalidArgument,
                    $"{where}: {Name} takes exactly one endpoint ({EndpointHelp}); only HAProxy takes several (one per instance of an HA pair).", where);
            if (Secret?.RequiredBecause(description) is string why && !HasCredential(description))
                throw new BbException("LoadBalancerMissingCredential", BbErrorCategory.AuthenticationError,
                    $"{where}: {why} Pass it as -LoadBalancerCredential @{{ '<load balancer name>' = <PSCredential> }} ({Secret.Help}), or name an Automation credential asset in the profile (Settings.CredentialAsset).", where);
        }

        /// <summary>True when a credential was applied to the description.</summary>
        protected virtual bool HasCredential(LoadBalancerDescription d) => d.Password is not null;
    }

    /// <summary>The registry of kinds: one descriptor per member of <see cref="LoadBalancerKind"/>, found by type.</summary>
    public static class LoadBalancerKinds
    {
        private static readonly Dictionary<LoadBalancerKind, LoadBalancerKindDescriptor> ByKind = Discover();

        /// <summary>Settings every kind takes.</summary>
        public static readonly IReadOnlyList<LoadBalancerSetting> CommonSettings = new[]
        {
            LoadBalancerSetting.Text("Endpoint", "The control endpoint (what it is depends on the kind); several comma-separated for an HAProxy HA pair.", (d, v) => { }),
            LoadBalancerSetting.Text("AdminSocket", "HAProxy: another name for Endpoint.", (d, v) => { }),
            LoadBalancerSetting.Text("Backend", "The backend, upstream, balancer, pool or target group that serves Bitbucket.", (d, v) => { }),
            LoadBalancerSetting.Enum<MemberMatch>("MatchBy", "How nodes are matched to members: Auto, Name, Address or Map.", (d, v) => d.MatchBy = v),
            LoadBalancerSetting.Boolean("SkipCertificateCheck", "true: do not verify the TLS certificate of an HTTPS endpoint (test servers only).", (d, v) => d.SkipCertificateCheck = v),
            new LoadBalancerSetting("TimeoutSec", "Seconds one request or command may take (1-600).", (d, v) =>
                d.RequestTimeout = int.TryParse(v, out var s) && s >= 1 && s <= 600 ? TimeSpan.FromSeconds(s) : throw new FormatException($"'{v}' is not a whole number of seconds from 1 to 600.")),
            LoadBalancerSetting.Text("CredentialAsset", "In an Azure Automation runbook: the name of the credential asset that holds this load balancer's credential (read with Get-AutomationPSCredential; never the secret itself).", (d, v) => { }),
        };

        /// <summary>Every kind, in the order of <see cref="LoadBalancerKind"/>.</summary>
        public static IReadOnlyList<LoadBalancerKindDescriptor> All => ByKind.OrderBy(k => k.Key).Select(k => k.Value).ToArray();

        /// <summary>The kinds' names, for messages.</summary>
        public static string Names => string.Join(", ", All.Select(k => k.Name));

        public static LoadBalancerKindDescriptor Get(LoadBalancerKind kind) =>
            ByKind.TryGetValue(kind, out var d) ? d : throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown load balancer kind.");

        /// <summary>The kind named (case-insensitive), or null.</summary>
        public static LoadBalancerKindDescriptor? Find(string? name) =>
            All.FirstOrDefault(k => string.Equals(k.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));

        private static Dictionary<LoadBalancerKind, LoadBalancerKindDescriptor> Discover()
        {
            var found = typeof(LoadBalancerKinds).Assembly.GetTypes()
                .Where(t => !t.IsAbstract && typeof(LoadBalancerKindDescriptor).IsAssignableFrom(t))
                .Select(t => (LoadBalancerKindDescriptor)Activator.CreateInstance(t)!)
                .ToList();
            var map = new Dictionary<LoadBalancerKind, LoadBalancerKindDescriptor>();
            foreach (var d in found)
            {
                if (map.ContainsKey(d.Kind)) throw new InvalidOperationException($"Two descriptors for load balancer kind {d.Kind}.");
                map[d.Kind] = d;
            }
            foreach (LoadBalancerKind k in System.Enum.GetValues(typeof(LoadBalancerKind)))
                if (!map.ContainsKey(k)) throw new InvalidOperationException($"No descriptor for load balancer kind {k}.");
            return map;
        }
    }
}

namespace BitbucketZdu.Core.LoadBalancers
{
    /// <summary>A load balancer's credential (user name and secret) as it travels to a provider; <see cref="ToString"/> never shows the secret.</summary>
    public sealed class LoadBalancerCredential
    {
        public LoadBalancerCredential(string? userName, SecureString password)
        {
            UserName = userName ?? "";
            Password = password ?? throw new ArgumentNullException(nameof(password));
        }

        public string UserName { get; }
        public SecureString Password { get; }
        public override string ToString() => $"credential of '{UserName}'";
    }
}
