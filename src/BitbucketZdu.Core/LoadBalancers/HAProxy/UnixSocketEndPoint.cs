using System;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BitbucketZdu.Core.LoadBalancers.HAProxy
{
    /// <summary>
    /// An AF_UNIX endpoint for netstandard2.0, which lacks UnixDomainSocketEndPoint: serialises a sockaddr_un
    /// (family, then the NUL-terminated path). SocketAddress writes the family in the platform's layout, so the path
    /// always starts at offset 2 (Linux sa_family_t, macOS sun_len + sun_family).
    /// </summary>
    public sealed class UnixSocketEndPoint : EndPoint
    {
        private const int PathOffset = 2;
        private const int MaxPathBytes = 103; // macOS sun_path is 104 bytes (Linux 108), including the NUL
        private readonly byte[] _path;

        public UnixSocketEndPoint(string path)
        {
            if (string.IsNullOrEmpty(path)) throw new ArgumentException("A socket path is required.", nameof(path));
            _path = Encoding.UTF8.GetBytes(path);
            if (_path.Length > MaxPathBytes)
                throw new ArgumentException($"The socket path '{path}' is longer than {MaxPathBytes} bytes, the limit of a Unix domain socket address.", nameof(path));
            Path = path;
        }

        public string Path { get; }

        public override AddressFamily AddressFamily => AddressFamily.Unix;

        public override SocketAddress Serialize()
        {
            var address = new SocketAddress(AddressFamily.Unix, PathOffset + _path.Length + 1);
            for (var i = 0; i < _path.Length; i++) address[PathOffset + i] = _path[i];
            address[PathOffset + _path.Length] = 0;
            return address;
        }

        public override EndPoint Create(SocketAddress socketAddress)
        {
            var length = 0;
            while (PathOffset + length < socketAddress.Size && socketAddress[PathOffset + length] != 0) length++;
            var bytes = new byte[length];
            for (var i = 0; i < length; i++) bytes[i] = socketAddress[PathOffset + i];
            return new UnixSocketEndPoint(length == 0 ? "\0" : Encoding.UTF8.GetString(bytes));
        }

        public override string ToString() => "unix://" + Path;
    }
}
