using System.Net;
using System.Text;
using BitbucketZdu.Core.Api;
using BitbucketZdu.TestSupport;
using static BitbucketZdu.Core.Tests.Api.ZduTestData;

namespace BitbucketZdu.Core.Tests.Api;

/// <summary>What the client reads is bounded, broken answers are transport failures, and echoed secrets are redacted.</summary>
public sealed class ZduClientBoundsTests
{
    /// <summary>A body of <paramref name="length"/> bytes ('x'), or endless when null, that counts what was read.</summary>
    private sealed class CountingStream : Stream
    {
        private readonly long? _length;
        private readonly long? _failAt;
        public long BytesRead { get; private set; }

        public CountingStream(long? length, long? failAt = null)
        {
            _length = length;
            _failAt = failAt;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_failAt is long f && BytesRead >= f) throw new IOException("connection reset by peer");
            var n = (int)Math.Min(count, _length is long l ? l - BytesRead : count);
            Array.Fill(buffer, (byte)'x', offset, n);
            BytesRead += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class Handler(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        public List<HttpMethod> Methods { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Methods.Add(request.Method);
            return Task.FromResult(answer(request));
        }
    }

    private static ZduClient Client(Handler handler, long max = 64 * 1024)
    {
        var options = Options("http://bitbucket.test");
        options.MaxResponseBytes = max;
        options.MaxRetries = 1;
        return new ZduClient(options, handler, ownsHandler: true);
    }

    [Fact]
    public async Task An_endless_answer_without_a_length_is_cut_at_the_bound_and_refused()
    {
        var body = new CountingStream(null);
        var handler = new Handler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(body) });
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduResponseTooLarge", ex.ErrorId);
        Assert.Equal(BbErrorCategory.InvalidResult, ex.Category);
        Assert.Contains("65536 bytes", ex.Message);
        Assert.InRange(body.BytesRead, 64 * 1024, 64 * 1024 + 16 * 1024);
        Assert.Single(handler.Methods); // not retried: a second read would be just as large
    }

    [Fact]
    public async Task A_declared_length_over_the_bound_is_refused_without_reading_the_body()
    {
        var body = new CountingStream(1024 * 1024);
        var handler = new Handler(_ =>
        {
            var content = new StreamContent(body);
            content.Headers.ContentLength = 1024 * 1024;
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = content };
        });
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduResponseTooLarge", ex.ErrorId);
        Assert.Contains("declares 1048576 bytes", ex.Message);
        Assert.Equal(0, body.BytesRead);
    }

    [Fact]
    public async Task An_oversized_answer_to_a_POST_is_refused_too()
    {
        var handler = new Handler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(new CountingStream(null)) });
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.StartAsync());

        Assert.Equal("ZduResponseTooLarge", ex.ErrorId);
    }

    [Fact]
    public async Task A_connection_that_breaks_inside_the_body_is_retried_then_reported_as_unreachable()
    {
        var handler = new Handler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(new CountingStream(null, failAt: 100)) });
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduUnreachable", ex.ErrorId);
        Assert.Contains("connection reset by peer", ex.Message);
        Assert.Equal(2, handler.Methods.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_server_that_echoes_the_Authorization_header_has_it_redacted_from_the_message(bool bearer)
    {
        var handler = new Handler(request => new HttpResponseMessage(HttpStatusCode.InternalServerError)
        {
            Content = new StringContent($$"""{"errors":[{"message":"Rejected header Authorization: {{request.Headers.Authorization}}; raw {{(bearer ? Canary.Token : Canary.Password)}}"}]}""", Encoding.UTF8, "application/json"),
        });
        var options = Options("http://bitbucket.test", bearer);
        using var client = new ZduClient(options, handler, ownsHandler: true);

        var ex = await Assert.ThrowsAsync<ZduApiException>(() => client.GetClusterAsync());

        Assert.Equal("ZduServerError", ex.ErrorId);
        Assert.Contains(bearer ? "Authorization: Bearer ***" : "Authorization: Basic ***", ex.Message);
        Canary.AssertAbsent(ex.Message + string.Join(" ", ex.ServerMessages) + ex, "the error");
        Assert.Contains("raw ***", ex.Message);
    }
}
