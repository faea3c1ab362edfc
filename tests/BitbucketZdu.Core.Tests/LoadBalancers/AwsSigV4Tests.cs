using BitbucketZdu.Core.LoadBalancers.AwsElb;

namespace BitbucketZdu.Core.Tests.LoadBalancers;

public sealed class AwsSigV4Tests
{
    /// <summary>
    /// The worked example of AWS's Signature Version 4 pages (IAM ListUsers, 2015-08-30 12:36:00 UTC, the documentation's
    /// example key): canonical request hash f536975d… and signature 5d672d79….
    /// </summary>
    [Fact]
    public void Signs_the_documented_example_request_as_aws_does()
    {
        var headers = new Dictionary<string, string>
        {
            ["content-type"] = "application/x-www-form-urlencoded; charset=utf-8",
            ["host"] = "iam.amazonaws.com",
            ["x-amz-date"] = "20150830T123600Z",
        };
        var auth = AwsSigV4.Authorization("GET", "/", "Action=ListUsers&Version=2010-05-08", headers, "",
            new DateTime(2015, 8, 30, 12, 36, 0, DateTimeKind.Utc), "us-east-1", "iam", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, " +
                     "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", auth);
    }

    [Theory]
    [InlineData("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/bb/73e2", "arn%3Aaws%3Aelasticloadbalancing%3Aeu-west-1%3A123456789012%3Atargetgroup%2Fbb%2F73e2")]
    [InlineData("a b~_.-", "a%20b~_.-")]
    public void Encodes_as_rfc_3986(string text, string encoded) => Assert.Equal(encoded, AwsSigV4.Encode(text));
}
