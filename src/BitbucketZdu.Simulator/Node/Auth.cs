using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace BitbucketZdu.Simulator.Node;

/// <summary>Authentication and the filters in front of /rest/zdu, with the real product's status codes and bodies.</summary>
public static class Auth
{
    private const string SysadminOnly = "Client must be authenticated as a system administrator to access this resource.";

    /// <summary>The Basic-auth user of the request, whatever its password (for activity counting), or null.</summary>
    public static string? BasicUser(HttpContext ctx) => Decode(ctx)?.User;

    /// <summary>
    /// True for a system administrator; otherwise the 401/403 answer is written, a WARN line goes to the node's log
    /// (<paramref name="log"/>) and false is returned. A wrong password logs <c>Authentication failed for user '…'</c>:
    /// the failed logins that count towards Bitbucket's CAPTCHA, which tests count in the node logs. Never the password.
    /// </summary>
    /// <param name="changedPassword">The sysadmin's password as changed since start (fault <c>adminPassword</c>), or null.</param>
    public static async Task<bool> RequireSysadminAsync(HttpContext ctx, NodeConfig config, string? changedPassword = null, Action<string>? log = null)
    {
        var request = $"{ctx.Request.Method} {ctx.Request.Path}{ctx.Request.QueryString} from {ctx.Connection.RemoteIpAddress}";
        var header = ctx.Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"Bitbucket\"";
            log?.Invoke($"WARN Unauthenticated request refused (no credentials): {request}");
            await WriteStatusAsync(ctx, 401, "Client must be authenticated to access this resource.");
            return false;
        }
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            // HTTP access tokens may not carry ADMIN permission (BSERV-10482): the sysadmin filter refuses them.
            log?.Invoke($"WARN Access denied: an HTTP access token is not a system administrator: {request}");
            await WriteStatusAsync(ctx, 403, SysadminOnly);
            return false;
        }
        var basic = Decode(ctx);
        if (basic is { } b && b.User == config.AdminUser && FixedEquals(b.Password, changedPassword ?? config.AdminPassword)) return true;
        if (basic is { } u && config.Users.TryGetValue(u.User, out var pw) && FixedEquals(u.Password, pw))
        {
            log?.Invoke($"WARN Access denied: user '{u.User}' is not a system administrator: {request}");
            await WriteStatusAsync(ctx, 403, SysadminOnly);
            return false;
        }
        log?.Invoke($"WARN Authentication failed for user '{basic?.User ?? "?"}': {request}");
        await ZduApi.WriteErrorsAsync(ctx, 401, "Authentication failed. Please check your credentials and try again.",
            "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException");
        return false;
    }

    /// <summary>atlassian-rest's XSRF filter: a POST that a browser form could send needs X-Atlassian-Token: no-check.</summary>
    public static async Task<bool> CheckXsrfAsync(HttpContext ctx)
    {
        var type = ctx.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        var formLike = type is null or "" or "application/x-www-form-urlencoded" or "multipart/form-data" or "text/plain";
        var token = ctx.Request.Headers["X-Atlassian-Token"].ToString();
        if (!formLike || token is "no-check" or "nocheck") return true;
        await WriteStatusAsync(ctx, 403, "XSRF check failed");
        return false;
    }

    /// <summary>atlassian-rest's Status entity: JSON when the client accepts it, XML otherwise.</summary>
    public static async Task WriteStatusAsync(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        var accept = ctx.Request.Headers.Accept.ToString();
        if (accept.Contains("application/json", StringComparison.OrdinalIgnoreCase))
        {
            ctx.Response.ContentType = "application/json;charset=UTF-8";
            await ctx.Response.WriteAsync($"{{\"status-code\":{status},\"message\":{System.Text.Json.JsonSerializer.Serialize(message)}}}");
        }
        else
        {
            ctx.Response.ContentType = "application/xml;charset=UTF-8";
            await ctx.Response.WriteAsync($"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><status><status-code>{status}</status-code><message>{WebUtility.HtmlEncode(message)}</message></status>");
        }
    }

    private static (string User, string Password)? Decode(HttpContext ctx)
    {
        var header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = text.IndexOf(':');
            return colon < 0 ? null : (text[..colon], text[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static bool FixedEquals(string a, string b) =>
        System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}
