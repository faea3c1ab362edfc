using BitbucketZdu.Core.Rules;

namespace BitbucketZdu.Core.Tests.Rules;

public class BitbucketVersionTests
{
    [Theory]
    [InlineData("8.19.3", "8.19.4", true)]
    [InlineData("7.9.0", "7.9.14", true)]
    [InlineData("8.19.3", "8.19.3", false)]
    [InlineData("8.19.3", "8.19.2", false)]
    [InlineData("8.19.3", "8.20.0", false)]
    [InlineData("8.19.3", "9.0.0", false)]
    public void Only_a_higher_bugfix_of_the_same_line_is_an_upgrade(string from, string to, bool allowed)
    {
        var current = BitbucketVersion.Parse(from);
        var target = BitbucketVersion.Parse(to);
        Assert.Equal(allowed, current.IsBugfixUpgradeTo(target));
        Assert.Equal(allowed, current.WhyNotUpgradableTo(target) is null);
    }

    [Fact]
    public void Refusals_say_why()
    {
        var v = BitbucketVersion.Parse("8.19.3");
        Assert.Contains("downgrade", v.WhyNotUpgradableTo(BitbucketVersion.Parse("8.19.1")));
        Assert.Contains("8.19 line", v.WhyNotUpgradableTo(BitbucketVersion.Parse("8.20.0")));
        Assert.Contains("already runs", v.WhyNotUpgradableTo(BitbucketVersion.Parse("8.19.3")));
    }

    [Theory]
    [InlineData("8.19")]
    [InlineData("eight")]
    [InlineData("")]
    [InlineData("8.19.x")]
    public void Malformed_versions_are_refused(string text)
    {
        Assert.False(BitbucketVersion.TryParse(text, out _));
        Assert.Throws<FormatException>(() => BitbucketVersion.Parse(text));
    }

    [Fact]
    public void Ordering_is_numeric_not_textual()
    {
        Assert.True(BitbucketVersion.Parse("8.19.10").CompareTo(BitbucketVersion.Parse("8.19.9")) > 0);
    }
}
