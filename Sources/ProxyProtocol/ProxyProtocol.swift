#if canImport(Glibc)
import Glibc
#endif

/// One end of a proxied TCP connection, as the proxy saw it.
public struct ProxyEndpoint: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The address in its canonical text form (`192.0.2.1`, `2001:db8::1`).
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with IPv6 in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// What a PROXY protocol header says about the connection.
public enum ProxyHeader: Equatable, Sendable {
    /// A relayed TCP connection: the player's address and the address it connected to.
    case proxied(source: ProxyEndpoint, destination: ProxyEndpoint)
    /// No addresses to take over: v2 `LOCAL` (the proxy's own health check),
    /// v1 `UNKNOWN`, or a v2 family other than TCP over IPv4/IPv6. The
    /// connection's own addresses stand.
    case local
}

/// The outcome of looking for a PROXY header at the start of a buffer.
public enum ProxyParseResult: Equatable, Sendable {
    /// The bytes so far are a valid beginning; read more and parse again.
    case needMoreData
    /// A complete header; the request proper starts `consumed` bytes in.
    case header(ProxyHeader, consumed: Int)
    /// The bytes start like a PROXY header but break the protocol.
    case invalid(String)
    /// The bytes cannot start a PROXY header (e.g. `GET /…`).
    case notProxy
}

/// Parses PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy's
/// `send-proxy` / `send-proxy-v2` send them before the first request byte.
///
/// Bounded: it reads only inside the buffer, never more than 107 bytes for
/// v1, and refuses a v2 header longer than `maximumV2Length`. It allocates
/// only the address strings of a complete header.
public enum ProxyProtocolParser {
    /// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The longest v1 header the spec allows, CRLF included.
    public static let v1MaximumLength = 107
    /// The default cap on a v2 header (16 fixed bytes plus addresses and TLVs);
    /// HAProxy's own headers with SSL and unique-id TLVs stay well under it.
    public static let defaultMaximumV2Length = 2_048

    private static let v1Prefix = Array("PROXY ".utf8)

    /// Parses the header at the start of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maximumV2Length: Int = defaultMaximumV2Length) -> ProxyParseResult {
        guard !bytes.isEmpty else { return .needMoreData }
        if startsWith(bytes, prefixOf: v2Signature) {
            return bytes.count < v2Signature.count ? .needMoreData : parseV2(bytes, maximumLength: maximumV2Length)
        }
        if startsWith(bytes, prefixOf: v1Prefix) {
            return bytes.count < v1Prefix.count ? .needMoreData : parseV1(bytes)
        }
        return .notProxy
    }

    /// Parses the header at the start of `bytes`.
    public static func parse(_ bytes: [UInt8], maximumV2Length: Int = defaultMaximumV2Length) -> ProxyParseResult {
        bytes.withUnsafeBytes { parse($0, maximumV2Length: maximumV2Length) }
    }

    /// Whether the first `min(bytes.count, prefix.count)` bytes match `prefix`.
    private static func startsWith(_ bytes: UnsafeRawBufferPointer, prefixOf prefix: [UInt8]) -> Bool {
        let n = min(bytes.count, prefix.count)
        for i in 0..<n where bytes[i] != prefix[i] { return false }
        return true
    }

    // MARK: v1

    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let searchable = min(bytes.count, v1MaximumLength)
        var lineEnd: Int?
        for i in 0..<searchable {
            let byte = bytes[i]
            if byte == 0x0D {
                guard i + 1 < searchable else { break }
                guard bytes[i + 1] == 0x0A else { return .invalid("v1: CR not followed by LF") }
                lineEnd = i
                break
            }
            // Printable ASCII only: this also rejects a LF without its CR.
            guard byte >= 0x20, byte < 0x7F else { return .invalid("v1: byte \(byte) in the header") }
        }
        guard let lineEnd else {
            return bytes.count < v1MaximumLength ? .needMoreData : .invalid("v1: no CRLF within \(v1MaximumLength) bytes")
        }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<lineEnd]), as: UTF8.self)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let consumed = lineEnd + 2
        guard fields.count >= 2 else { return .invalid("v1: no protocol") }
        switch fields[1] {
        case "UNKNOWN":
            // The spec lets the rest of an UNKNOWN line be anything; it is ignored.
            return .header(.local, consumed: consumed)
        case "TCP4", "TCP6":
            guard fields.count == 6 else { return .invalid("v1: \(fields[1]) needs 4 fields, got \(fields.count - 2)") }
            let family = fields[1] == "TCP4" ? AF_INET : AF_INET6
            guard let source = canonicalAddress(fields[2], family: family) else { return .invalid("v1: bad source address") }
            guard let destination = canonicalAddress(fields[3], family: family) else { return .invalid("v1: bad destination address") }
            guard let sourcePort = port(fields[4]) else { return .invalid("v1: bad source port") }
            guard let destinationPort = port(fields[5]) else { return .invalid("v1: bad destination port") }
            return .header(.proxied(source: ProxyEndpoint(host: source, port: sourcePort),
                                    destination: ProxyEndpoint(host: destination, port: destinationPort)),
                           consumed: consumed)
        default:
            return .invalid("v1: unknown protocol")
        }
    }

    /// A decimal port, 0…65535, digits only.
    private static func port(_ text: String) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt16(text)
    }

    /// The canonical text of an address in `family`, or nil when it is not one.
    private static func canonicalAddress(_ text: String, family: Int32) -> String? {
        var storage = in6_addr()
        let parsed = withUnsafeMutableBytes(of: &storage) { inet_pton(family, text, $0.baseAddress) }
        guard parsed == 1 else { return nil }
        return withUnsafeBytes(of: &storage) { presentation($0, family: family) }
    }

    // MARK: v2

    private static func parseV2(_ bytes: UnsafeRawBufferPointer, maximumLength: Int) -> ProxyParseResult {
        let fixed = 16
        guard bytes.count >= fixed else { return .needMoreData }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2: version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2: command \(command)") }
        let familyProtocol = bytes[13]
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard fixed + length <= maximumLength else { return .invalid("v2: header of \(fixed + length) bytes exceeds \(maximumLength)") }
        guard bytes.count >= fixed + length else { return .needMoreData }
        let consumed = fixed + length
        let family = familyProtocol >> 4, transport = familyProtocol & 0x0F
        guard family <= 3, transport <= 2 else { return .invalid("v2: address family/protocol 0x\(String(familyProtocol, radix: 16))") }
        // LOCAL: the proxy speaks for itself (health checks); addresses, if any, are to be ignored.
        if command == 0 { return .header(.local, consumed: consumed) }
        let body = UnsafeRawBufferPointer(rebasing: bytes[fixed..<consumed])
        switch familyProtocol {
        case 0x11:
            guard length >= 12 else { return .invalid("v2: TCP4 addresses need 12 bytes, length is \(length)") }
            return .header(endpoints(body, addressSize: 4, family: AF_INET), consumed: consumed)
        case 0x21:
            guard length >= 36 else { return .invalid("v2: TCP6 addresses need 36 bytes, length is \(length)") }
            return .header(endpoints(body, addressSize: 16, family: AF_INET6), consumed: consumed)
        default:
            // UNSPEC, UDP or unix sockets: nothing a TCP stream port can use, and the
            // spec says to fall back to the connection's own addresses.
            return .header(.local, consumed: consumed)
        }
    }

    /// Source address, destination address, source port, destination port; TLVs after them are skipped.
    private static func endpoints(_ body: UnsafeRawBufferPointer, addressSize: Int, family: Int32) -> ProxyHeader {
        let source = presentation(UnsafeRawBufferPointer(rebasing: body[0..<addressSize]), family: family)
        let destination = presentation(UnsafeRawBufferPointer(rebasing: body[addressSize..<(2 * addressSize)]), family: family)
        let ports = 2 * addressSize
        let sourcePort = UInt16(body[ports]) << 8 | UInt16(body[ports + 1])
        let destinationPort = UInt16(body[ports + 2]) << 8 | UInt16(body[ports + 3])
        return .proxied(source: ProxyEndpoint(host: source, port: sourcePort),
                        destination: ProxyEndpoint(host: destination, port: destinationPort))
    }

    /// `inet_ntop` of raw address bytes (4 for IPv4, 16 for IPv6).
    private static func presentation(_ address: UnsafeRawBufferPointer, family: Int32) -> String {
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: address[0..<min(address.count, 16)])) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: &storage) { raw in
            text.withUnsafeMutableBufferPointer { inet_ntop(family, raw.baseAddress, $0.baseAddress, socklen_t(INET6_ADDRSTRLEN)) }
        }
        guard written != nil else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
