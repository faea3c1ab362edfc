using System;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace BitbucketZdu.Core.Api
{
    /// <summary>
    /// How the client authenticates. Secrets stay in SecureString and are turned into a header value only at the
    /// moment a request is sent; <see cref="ToString"/> never shows them.
    /// </summary>
    public sealed class ZduCredential
    {
        private readonly SecureString _secret;

        private ZduCredential(string? userName, SecureString secret)
        {
            UserName = userName;
            _secret = secret;
        }

        /// <summary>The user for Basic auth; null for a bearer token.</summary>
        public string? UserName { get; }

        public bool IsBearerToken => UserName is null;

        public static ZduCredential Basic(string userName, SecureString password)
        {
            if (string.IsNullOrWhiteSpace(userName)) throw new ArgumentException("A user name is required for Basic authentication.", nameof(userName));
            return new ZduCredential(userName, password ?? throw new ArgumentNullException(nameof(password)));
        }

        public static ZduCredential Bearer(SecureString token) =>
            new ZduCredential(null, token ?? throw new ArgumentNullException(nameof(token)));

        /// <summary>The Authorization header value. Callers must not log or keep it.</summary>
        internal string CreateAuthorizationHeader()
        {
            var secret = Reveal(_secret);
            return IsBearerToken
                ? "Bearer " + secret
                : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(UserName + ":" + secret));
        }

        /// <summary>
        /// <paramref name="text"/> with this credential's secret and its Authorization header forms replaced by
        /// '***': for server text (error bodies, proxy pages) that echoes what we sent, before it reaches a message.
        /// </summary>
        internal string Redact(string text)
        {
            if (string.IsNullOrEmpty(text)) return text;
            var secret = Reveal(_secret);
            if (secret.Length == 0) return text;
            var header = CreateAuthorizationHeader();
            var encoded = header.Substring(header.IndexOf(' ') + 1);
            foreach (var form in new[] { encoded, secret, Uri.EscapeDataString(secret) })
                if (form.Length > 0 && text.IndexOf(form, StringComparison.Ordinal) >= 0)
                    text = text.Replace(form, "***");
            return text;
        }

        internal static string Reveal(SecureString value)
        {
            var ptr = IntPtr.Zero;
            try
            {
                ptr = Marshal.SecureStringToGlobalAllocUnicode(value);
                return Marshal.PtrToStringUni(ptr) ?? string.Empty;
            }
            finally
            {
                if (ptr != IntPtr.Zero) Marshal.ZeroFreeGlobalAllocUnicode(ptr);
            }
        }

        public override string ToString() => IsBearerToken ? "Bearer token (hidden)" : $"Basic {UserName} (password hidden)";
    }
}
