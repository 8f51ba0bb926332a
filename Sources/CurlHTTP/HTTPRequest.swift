import Foundation

/// One outbound HTTP request, as every client in acerelay describes it.
///
/// The limits travel with the request: each one has a default that fits a
/// control-plane call to a local service (a small JSON answer within seconds),
/// so a caller only states what differs.
public struct HTTPRequest: Sendable {
    /// The request method.
    public enum Method: String, Sendable {
        case get = "GET"
        case head = "HEAD"
        case post = "POST"
        case put = "PUT"
        case patch = "PATCH"
        case delete = "DELETE"
    }

    /// What is sent after the head.
    public enum Body: Sendable {
        /// No body.
        case empty
        /// Bytes already in memory, with their `Content-Type`.
        case bytes([UInt8], contentType: String)
        /// A file streamed from disk (image tarballs can be hundreds of megabytes);
        /// it is opened when the transfer is built, so a missing file fails at once.
        case file(path: String, contentType: String)

        /// An encoded JSON document.
        public static func json(_ bytes: [UInt8]) -> Body { .bytes(bytes, contentType: "application/json") }

        /// `value` encoded as JSON.
        public static func json<Value: Encodable>(encoding value: Value) throws -> Body {
            .json(Array(try JSONEncoder().encode(value)))
        }
    }

    /// A minimum transfer rate: below `bytesPerSecond` for `seconds` in a row fails the
    /// transfer as timed out, so a peer that trickles bytes cannot hold it open.
    public struct LowSpeedLimit: Sendable, Equatable {
        public var bytesPerSecond: Int
        public var seconds: Int

        /// Fails a transfer slower than `bytesPerSecond` for `seconds` in a row.
        public init(bytesPerSecond: Int, seconds: Int) {
            self.bytesPerSecond = bytesPerSecond
            self.seconds = seconds
        }
    }

    /// Absolute `http://` or `https://` URL; for a unix socket, the host part only fills the `Host` header.
    public var url: String
    /// The method; a body is sent with any of them.
    public var method: Method
    /// Extra header fields, sent in this order.
    public var headers: [(name: String, value: String)]
    /// What follows the head; its `Content-Type` is sent with it.
    public var body: Body
    /// Connects to this unix socket instead of the URL's host (the Docker daemon).
    public var unixSocketPath: String?
    /// Time allowed to connect.
    public var connectTimeout: Duration
    /// Time allowed for the whole exchange; nil for none, which only an endless
    /// stream read through a streaming sink should use.
    public var timeout: Duration?
    /// Largest response body kept; a longer one fails the request with `bodyTooLarge`.
    /// Applies to buffered responses; a streaming sink sees every byte and keeps none.
    public var maxBodyBytes: Int
    /// Largest total size of the response's header lines; more fails with `headersTooLarge`.
    public var maxHeaderBytes: Int
    /// Optional minimum rate on top of `timeout`.
    public var lowSpeedLimit: LowSpeedLimit?
    /// Redirects followed; 0 (the default) returns a 3xx answer as it is.
    /// Followed redirects are held to http and https like the first request.
    public var maxRedirects: Int
    /// Treat a status of 400 or more as a failure (`HTTPClientError.other`) instead of an answer.
    public var failOnHTTPError: Bool
    /// `User-Agent`; nil sends none.
    public var userAgent: String?
    /// Keep the connection for a later request to the same host (curl's cache in
    /// the multi handle); false closes it when this request ends, for one-shot
    /// calls whose peer may be gone by the next one (an engine's `getstream` and `stop`).
    public var reuseConnection = true

    /// Seconds a kept connection may sit idle before curl closes it instead of reusing it.
    static let idleConnectionSeconds = 5

    /// A request with the defaults for a control-plane call: GET, no redirects,
    /// 3 s to connect, 10 s in all, at most 1 MiB of body and 64 KiB of headers.
    public init(
        url: String,
        method: Method = .get,
        headers: [(name: String, value: String)] = [],
        body: Body = .empty,
        unixSocketPath: String? = nil,
        connectTimeout: Duration = .seconds(3),
        timeout: Duration? = .seconds(10),
        maxBodyBytes: Int = 1 << 20,
        maxHeaderBytes: Int = 64 << 10,
        lowSpeedLimit: LowSpeedLimit? = nil,
        maxRedirects: Int = 0,
        failOnHTTPError: Bool = false,
        userAgent: String? = nil
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.unixSocketPath = unixSocketPath
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.lowSpeedLimit = lowSpeedLimit
        self.maxRedirects = maxRedirects
        self.failOnHTTPError = failOnHTTPError
        self.userAgent = userAgent
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a tiny positive limit never becomes "none" (0).
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        let ms = Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        return max(ms, 1)
    }
}
