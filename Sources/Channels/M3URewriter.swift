/// Rewrites a playlist's stream URLs to point at this host, as the
/// orchestrator's `GET /modify_m3u?m3u_url=&host=&port=&mode=` does, so
/// playlists written for a local engine or an `acestream://` handler play
/// through acerelay.
///
/// - `default`: `http://127.0.0.1:<port>/...` and `http://localhost:<port>/...`
///   keep their path and query and get `http://<host>:<port>` as origin;
///   `acestream://<40 hex>` becomes `http://<host>:<port>/ace/getstream?id=<id>`.
/// - `proxy`: every `http(s)://` URL and every `acestream://<id>` link becomes
///   `http://<host>:<port>/proxy?url=<the original, percent-encoded>`.
///
/// Like the orchestrator, it rewrites URLs wherever they appear (a `tvg-logo`
/// served from the local machine moves too) and leaves everything else,
/// line ends included, as it was. Unlike it, an `acestream://` id longer than 40
/// hex digits is left alone instead of being cut to 40.
public struct M3URewriter: Sendable {
    /// What to rewrite.
    public enum Mode: String, Sendable, CaseIterable {
        case `default`
        case proxy
    }

    /// Why the query parameters were refused; the messages are the orchestrator's.
    public enum ParameterError: Error, Equatable, CustomStringConvertible {
        case invalidHost
        case portNotAnInteger
        case portOutOfRange
        case unknownMode(String)

        public var description: String {
            switch self {
            case .invalidHost: "Invalid 'host' parameter."
            case .portNotAnInteger: "Parameter 'port' must be an integer."
            case .portOutOfRange: "Parameter 'port' out of range (1-65535)."
            case let .unknownMode(mode): "Parameter 'mode' must be 'default' or 'proxy', not '\(mode.prefix(20))'."
            }
        }
    }

    /// The host written into rewritten URLs.
    public let host: String
    /// The port written into rewritten URLs.
    public let port: Int
    /// Which URLs are rewritten, and how.
    public let mode: Mode

    /// Validates the query parameters: `host` of letters, digits, dots and
    /// dashes; `port` an integer in 1...65535; `mode` `default` or `proxy`.
    public init(host: String, port: String, mode: String = "default") throws(ParameterError) {
        guard !host.isEmpty, host.utf8.allSatisfy({ Self.isHostByte($0) }) else { throw .invalidHost }
        guard let number = Int(port.trimmingWhitespace()) else { throw .portNotAnInteger }
        guard (1...65535).contains(number) else { throw .portOutOfRange }
        guard let parsedMode = Mode(rawValue: mode) else { throw .unknownMode(mode) }
        self.host = host
        self.port = number
        self.mode = parsedMode
    }

    /// Validates already-typed parameters, as the string form does.
    public init(host: String, port: Int, mode: Mode = .default) throws(ParameterError) {
        try self.init(host: host, port: String(port), mode: mode.rawValue)
    }

    /// The rewritten playlist.
    public func rewrite(_ content: String) -> String {
        let origin = "http://\(host):\(port)"
        switch mode {
        case .default:
            // The local engine's origin, only when a port and a path follow it.
            let loopback = /http:\/\/(?:127\.0\.0\.1|localhost):[0-9]+(?=\/)/
            let links = /acestream:\/\/([0-9a-fA-F]{40})(?![0-9a-fA-F])/
            return content
                .replacing(loopback) { _ in origin }
                .replacing(links) { match in "\(origin)/ace/getstream?id=\(match.output.1)" }
        case .proxy:
            let urls = /https?:\/\/[^\s'"<>]+/
            let links = /acestream:\/\/[0-9a-fA-F]{40}(?![0-9a-fA-F])/
            return content
                .replacing(urls) { match in "\(origin)/proxy?url=\(Self.percentEncoded(String(match.output)))" }
                .replacing(links) { match in "\(origin)/proxy?url=\(Self.percentEncoded(String(match.output)))" }
        }
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2E || byte == 0x2D
    }

    /// Every byte except `A-Z a-z 0-9 _ . - ~` percent-encoded, as the orchestrator's `quote(url, safe="")`.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            if isHostByte(byte) || byte == 0x5F || byte == 0x7E {
                bytes.append(byte)
            } else {
                bytes += [0x25, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
