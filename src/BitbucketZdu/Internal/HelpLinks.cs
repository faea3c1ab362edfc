namespace BitbucketZdu.Internal
{
    /// <summary>
    /// Where the help pages live online: each cmdlet's <c>HelpUri</c> is <see cref="CommandsBase"/> + "&lt;Name&gt;.md", the
    /// same URL as the <c>online version:</c> of docs/commands/&lt;Name&gt;.md, so <c>Get-Help &lt;Name&gt; -Online</c> opens the
    /// page in the repository (tests/pester/HelpLinks.Tests.ps1 checks both against the manifest's ProjectUri).
    /// </summary>
    internal static class HelpLinks
    {
        public const string CommandsBase = "https://github.com/bitbucketzdu/BitbucketZdu/blob/main/docs/commands/";
    }
}
