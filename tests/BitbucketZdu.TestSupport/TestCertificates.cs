using System.Security.Cryptography.X509Certificates;
using BitbucketZdu.Simulator.Tls;

namespace BitbucketZdu.TestSupport;

/// <summary>
/// Certificates made at test time: a CA, server certificates for localhost/127.0.0.1 (valid or expired), self-signed
/// ones. One maker for the tests, the end-to-end lab and the demo: the simulator's <see cref="SimCertificates"/>.
/// </summary>
public static class TestCertificates
{
    /// <summary>A CA certificate (with its key) valid from 60 days ago to 30 days ahead (room for expired certificates it signs).</summary>
    public static X509Certificate2 NewCa(string name) => SimCertificates.NewCa(name);

    /// <summary>
    /// A server certificate for localhost and 127.0.0.1 valid between <paramref name="notBefore"/> and
    /// <paramref name="notAfter"/>, signed by <paramref name="ca"/> or self-signed when it is null.
    /// </summary>
    public static X509Certificate2 NewServer(X509Certificate2? ca, DateTimeOffset notBefore, DateTimeOffset notAfter) =>
        SimCertificates.NewServer(ca, notBefore, notAfter);

    /// <summary>Writes the public part of <paramref name="cert"/> as PEM.</summary>
    public static string WritePem(X509Certificate2 cert, string path) => SimCertificates.WritePem(cert, path);
}
