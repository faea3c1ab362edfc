using System.Collections;
using BitbucketZdu.Core.Tests.Upgrade.Fakes;
using BitbucketZdu.Core.Upgrade.Profile;
using static BitbucketZdu.Core.Tests.Upgrade.Fakes.UpgradeFixture;

namespace BitbucketZdu.Core.Tests.Upgrade;

/// <summary>The profile's Tls and Proxy settings (issue 12 problems 2 and 10): what is read, and what is refused with the place named.</summary>
public sealed class ProfileTlsProxyTests : IDisposable
{
    private readonly UpgradeFixture _f = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("bbzdu-tlsp-").FullName;

    public void Dispose()
    {
        _f.Dispose();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public void Tls_and_Proxy_are_read_and_a_relative_CA_path_is_taken_from_the_profile_folder()
    {
        File.WriteAllText(Path.Combine(_dir, "ca.pem"), "not parsed here");
        var data = _f.ProfileData(To);
        data["Tls"] = new Hashtable { ["TrustedCertificatePath"] = "ca.pem" };
        data["Proxy"] = new Hashtable { ["Uri"] = "http://proxy.example.com:3128" };

        var p = ClusterProfileReader.Read(data, Path.Combine(_dir, "prod.psd1"));

        Assert.Equal(Path.Combine(_dir, "ca.pem"), p.TrustedCertificatePath);
        Assert.Equal(new Uri("http://proxy.example.com:3128"), p.Proxy);
    }

    /// <summary>
    /// The CA and proxy every call of an upgrade uses (cluster API, each node's API, /status): -TrustedCertificatePath /
    /// -Proxy first, then the open connection's (Connect-BbCluster -TrustedCertificatePath, given through -Connection),
    /// then the profile's Tls and Proxy. Before issue 12 the connection's CA did not reach the per-node reads.
    /// </summary>
    [Fact]
    public void The_CA_and_proxy_for_every_call_are_the_parameters_then_the_connections_then_the_profiles()
    {
        string Ca(string name)
        {
            var path = Path.Combine(_dir, name);
            using var ca = BitbucketZdu.TestSupport.TestCertificates.NewCa("BitbucketZdu " + name);
            BitbucketZdu.TestSupport.TestCertificates.WritePem(ca, path);
            return path;
        }
        var data = _f.ProfileData(To);
        data["Tls"] = new Hashtable { ["TrustedCertificatePath"] = Ca("profile-ca.pem") };
        data["Proxy"] = new Hashtable { ["Uri"] = "http://profile-proxy:3128" };
        var profile = ClusterProfileReader.Read(data, Path.Combine(_dir, "prod.psd1"));
        var connectionCa = Ca("connection-ca.pem");
        using var connection = new BitbucketZdu.Core.Api.ZduClient(new BitbucketZdu.Core.Api.ZduClientOptions(new Uri("https://bitbucket.example.com/bitbucket"),
            BitbucketZdu.Core.Api.ZduCredential.Basic("admin", BitbucketZdu.TestSupport.Canary.Secure(BitbucketZdu.TestSupport.Canary.Password)))
        { TrustedCertificatePath = connectionCa, Proxy = new Uri("http://connection-proxy:3128") });

        var fromProfile = new BitbucketZdu.Core.Upgrade.Ports.UpgradeConnectionOptions().TransportFor(profile);
        var fromConnection = new BitbucketZdu.Core.Upgrade.Ports.UpgradeConnectionOptions { ClusterClient = connection }.TransportFor(profile);
        var fromParameters = new BitbucketZdu.Core.Upgrade.Ports.UpgradeConnectionOptions
        {
            ClusterClient = connection, TrustedCertificatePath = Ca("parameter-ca.pem"), Proxy = new Uri("http://parameter-proxy:3128"),
        }.TransportFor(profile);

        Assert.Equal(profile.TrustedCertificatePath, fromProfile.TrustedCertificatePath);
        Assert.Equal(new Uri("http://profile-proxy:3128"), fromProfile.Proxy);
        Assert.Equal(connectionCa, fromConnection.TrustedCertificatePath);
        Assert.Equal(new Uri("http://connection-proxy:3128"), fromConnection.Proxy);
        Assert.Equal(Path.Combine(_dir, "parameter-ca.pem"), fromParameters.TrustedCertificatePath);
        Assert.Equal(new Uri("http://parameter-proxy:3128"), fromParameters.Proxy);
    }

    [Fact]
    public void Without_Tls_and_Proxy_nothing_is_set()
    {
        var p = ClusterProfileReader.Read(_f.ProfileData(To), Path.Combine(_dir, "prod.psd1"));
        Assert.Null(p.TrustedCertificatePath);
        Assert.Null(p.Proxy);
    }

    [Fact]
    public void A_missing_CA_file_credentials_in_the_proxy_URL_and_unknown_keys_are_refused_with_their_place()
    {
        var data = _f.ProfileData(To);
        data["Tls"] = new Hashtable { ["TrustedCertificatePath"] = Path.Combine(_dir, "missing.pem"), ["SkipCheck"] = true };
        data["Proxy"] = new Hashtable { ["Uri"] = "http://user:secret@proxy.example.com:3128", ["User"] = "x" };

        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data, Path.Combine(_dir, "prod.psd1")));

        var issues = ex.Issues.ToLookup(i => i.Place);
        Assert.Equal("ProfileInvalidValue", Assert.Single(issues["Tls.TrustedCertificatePath"]).ErrorId);
        Assert.Contains("missing.pem", Assert.Single(issues["Tls.TrustedCertificatePath"]).Message);
        Assert.Equal("ProfileUnknownKey", Assert.Single(issues["Tls.SkipCheck"]).ErrorId);
        Assert.Equal("ProfileInvalidValue", Assert.Single(issues["Proxy.Uri"]).ErrorId);
        Assert.Contains("-ProxyCredential", Assert.Single(issues["Proxy.Uri"]).Message);
        Assert.Equal("ProfileUnknownKey", Assert.Single(issues["Proxy.User"]).ErrorId);
        Assert.DoesNotContain("secret", ex.Message);
    }

    [Fact]
    public void A_Proxy_without_Uri_is_refused()
    {
        var data = _f.ProfileData(To);
        data["Proxy"] = new Hashtable();
        var ex = Assert.Throws<ProfileException>(() => ClusterProfileReader.Read(data, Path.Combine(_dir, "prod.psd1")));
        Assert.Equal("ProfileMissingValue", Assert.Single(ex.Issues, i => i.Place == "Proxy.Uri").ErrorId);
    }
}
