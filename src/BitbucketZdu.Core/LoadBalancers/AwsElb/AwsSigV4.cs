using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Security.Cryptography;
using System.Text;

namespace BitbucketZdu.Core.LoadBalancers.AwsElb
{
    /// <summary>
    /// AWS Signature Version 4 for one request (AWS General Reference, "Create a signed AWS API request"): canonical
    /// request → string to sign → HMAC chain over date, region, service, "aws4_request". Written here rather than taken
    /// from the AWS SDK so the module ships no SDK and no CLI.
    /// </summary>
    internal static class AwsSigV4
    {
        public const string Algorithm = "AWS4-HMAC-SHA256";

        /// <summary>The Authorization header value for a request whose headers (lower-case names) are all signed.</summary>
        public static string Authorization(string method, string path, string query, IReadOnlyDictionary<string, string> headers, string body,
            DateTime utc, string region, string service, string accessKeyId, string secretAccessKey)
        {
            var signed = headers.Keys.Select(k => k.ToLowerInvariant()).OrderBy(k => k, StringComparer.Ordinal).ToArray();
            var signedHeaders = string.Join(";", signed);
            var canonical = CanonicalRequest(method, path, query, headers, signedHeaders, body);
            var date = utc.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
            var scope = $"{date}/{region}/{service}/aws4_request";
            var toSign = $"{Algorithm}\n{utc.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}\n{scope}\n{Hex(Sha256(canonical))}";
            var key = SigningKey(secretAccessKey, date, region, service);
            var signature = Hex(Hmac(key, toSign));
            return $"{Algorithm} Credential={accessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
        }

        public static string CanonicalRequest(string method, string path, string query, IReadOnlyDictionary<string, string> headers, string signedHeaders, string body)
        {
            var byName = headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(" ", h.Value.Trim().Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries)));
            var canonicalHeaders = string.Concat(signedHeaders.Split(';').Select(n => n + ":" + byName[n] + "\n"));
            return $"{method}\n{(path.Length == 0 ? "/" : path)}\n{CanonicalQuery(query)}\n{canonicalHeaders}\n{signedHeaders}\n{Hex(Sha256(body))}";
        }

        /// <summary>Parameters sorted by name, each name and value RFC 3986-encoded.</summary>
        public static string CanonicalQuery(string query) =>
            string.Join("&", query.TrimStart('?').Split(new[] { '&' }, StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.Split(new[] { '=' }, 2))
                .Select(p => (Name: Encode(Uri.UnescapeDataString(p[0])), Value: Encode(Uri.UnescapeDataString(p.Length > 1 ? p[1] : ""))))
                .OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal)
                .Select(p => p.Name + "=" + p.Value));

        /// <summary>RFC 3986 percent-encoding: only A-Z a-z 0-9 - _ . ~ stay as they are.</summary>
        public static string Encode(string s)
        {
            var sb = new StringBuilder();
            foreach (var b in Encoding.UTF8.GetBytes(s))
            {
                var c = (char)b;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~') sb.Append(c);
                else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }

        private static byte[] SigningKey(string secret, string date, string region, string service)
        {
            var k = Hmac(Encoding.UTF8.GetBytes("AWS4" + secret), date);
            k = Hmac(k, region);
            k = Hmac(k, service);
            return Hmac(k, "aws4_request");
        }

        private static byte[] Hmac(byte[] key, string data)
        {
            using var h = new HMACSHA256(key);
            return h.ComputeHash(Encoding.UTF8.GetBytes(data));
        }

        private static byte[] Sha256(string s)
        {
            using var sha = SHA256.Create();
            return sha.ComputeHash(Encoding.UTF8.GetBytes(s));
        }

        private static string Hex(byte[] bytes) => string.Concat(bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
    }
}
