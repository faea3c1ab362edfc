using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace BitbucketZdu.Simulator.Tls;

/// <summary>The files of one internal CA set (<c>bbsim certs</c>): what the nodes, the front and the clients are given.</summary>
/// <param name="CaFile">ca.pem: the CA certificate, the file a client trusts (-TrustedCertificatePath, profile Tls).</param>
/// <param name="CertificateFile">node.pem: the server certificate (localhost, 127.0.0.1) the CA signed, for the nodes (bbsim.ssl.certificate).</param>
/// <param name="KeyFile">node.key: its private key, PKCS#8 PEM (bbsim.ssl.key).</param>
/// <param name="CombinedFile">front.pem: certificate and key in one file, as HAProxy's <c>crt</c> takes them.</param>
public sealed record CertificateSet(string CaFile, string CertificateFile, string KeyFile, string CombinedFile);

/// <summary>
/// Certificates made on the spot with System.Security.Cryptography: an internal CA and server certificates for
/// localhost/127.0.0.1 it signs (or self-signed ones), so a simulated cluster and its load balancer serve HTTPS the
/// way a production cluster with an internal CA does. Used by <c>bbsim certs</c> (the demo), the end-to-end lab and
/// the tests' certificates (tests/BitbucketZdu.TestSupport/TestCertificates.cs).
/// </summary>
public static class SimCertificates
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
    /// <summary>TLS client options that trust the CA in <paramref name="caPemFile"/> and nothing else (HAProxy's
    /// 'ssl verify required ca-file'; the module's TrustedCertificatePath).</summary>
    public static System.Net.Security.SslClientAuthenticationOptions TrustOnly(string caPemFile)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(X509Certificate2.CreateFromPem(File.ReadAllText(caPemFile)));
        return new System.Net.Security.SslClientAuthenticationOptions { CertificateChainPolicy = policy };
    }

    public static string WritePem(X509Certificate2 cert, string path)
    {
        File.WriteAllText(path, cert.ExportCertificatePem());
        return path;
    }

    /// <summary>
    /// A new CA named <paramref name="caName"/> and one localhost/127.0.0.1 server certificate it signed (valid from a
    /// day ago for 20 days), written into <paramref name="directory"/> as ca.pem, node.pem, node.key and front.pem.
    /// Returns the CA (with its key) and the file names.
    /// </summary>
    public static (X509Certificate2 Ca, CertificateSet Files) WriteSet(string directory, string caName)
    {
        Directory.CreateDirectory(directory);
        var ca = NewCa(caName);
        using var leaf = NewServer(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20));
        using var key = leaf.GetRSAPrivateKey()!;
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        var files = new CertificateSet(Path.Combine(directory, "ca.pem"), Path.Combine(directory, "node.pem"),
            Path.Combine(directory, "node.key"), Path.Combine(directory, "front.pem"));
        WritePem(ca, files.CaFile);
        WritePem(leaf, files.CertificateFile);
        File.WriteAllText(files.KeyFile, keyPem);
        File.WriteAllText(files.CombinedFile, leaf.ExportCertificatePem() + "\n" + keyPem + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(files.KeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.SetUnixFileMode(files.CombinedFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return (ca, files);
    }
}
