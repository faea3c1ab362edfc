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
