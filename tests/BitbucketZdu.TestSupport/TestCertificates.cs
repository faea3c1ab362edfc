using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace BitbucketZdu.TestSupport;

/// <summary>Certificates made at test time: a CA, server certificates for localhost/127.0.0.1 (valid or expired), self-signed ones.</summary>
public static class TestCertificates
{
    /// <summary>A CA certificate (with its key) valid from 60 days ago to 30 days ahead (room for expired certificates it signs).</summary>
    public static X509Certificate2 NewCa(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-60), DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>
    /// A server certificate for localhost and 127.0.0.1 valid between <paramref name="notBefore"/> and
    /// <paramref name="notAfter"/>, signed by <paramref name="ca"/> or self-signed when it is null.
    /// </summary>
    public static X509Certificate2 NewServer(X509Certificate2? ca, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid("1.3.6.1.5.5.7.3.1") }, false));
        X509Certificate2 withKey;
        if (ca is null)
        {
            withKey = request.CreateSelfSigned(notBefore, notAfter);
        }
        else
        {
            using var signed = request.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(8));
            withKey = signed.CopyWithPrivateKey(key);
        }
        using (withKey)
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pfx), null);
    }

    /// <summary>Writes the public part of <paramref name="cert"/> as PEM.</summary>
    public static string WritePem(X509Certificate2 cert, string path)
    {
        File.WriteAllText(path, cert.ExportCertificatePem());
        return path;
    }
}
