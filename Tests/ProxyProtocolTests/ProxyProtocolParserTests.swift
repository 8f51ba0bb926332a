import XCTest
import ProxyProtocol

/// Headers are built by hand from the PROXY protocol spec (haproxy.org,
/// proxy-protocol.txt); no HAProxy is needed to run these.
final class ProxyProtocolParserTests: XCTestCase {
    private let request = Array("GET /ace/getstream?id=0123456789abcdef0123456789abcdef01234567 HTTP/1.1\r\n\r\n".utf8)

    // MARK: v1

    func testV1TCP4() {
        let header = Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8)
        XCTAssertEqual(ProxyProtocolParser.parse(header + request),
                       .header(.proxied(source: ProxyEndpoint(host: "192.168.0.1", port: 56324),
                                        destination: ProxyEndpoint(host: "192.168.0.11", port: 443)),
                               consumed: header.count))
    }

    func testV1TCP6CanonicalisesAddresses() {
        let header = Array("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:10.0.0.1 40000 8080\r\n".utf8)
        XCTAssertEqual(ProxyProtocolParser.parse(header),
                       .header(.proxied(source: ProxyEndpoint(host: "2001:db8::1", port: 40000),
                                        destination: ProxyEndpoint(host: "::ffff:10.0.0.1", port: 8080)),
                               consumed: header.count))
        XCTAssertEqual(ProxyEndpoint(host: "2001:db8::1", port: 40000).description, "[2001:db8::1]:40000")
    }

    func testV1LongestHeaderIs107Bytes() {
        let max = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let tcp6 = Array("PROXY TCP6 \(max) \(max) 65535 65535\r\n".utf8)
        XCTAssertEqual(ProxyProtocolParser.parse(tcp6 + request),
                       .header(.proxied(source: ProxyEndpoint(host: max, port: 65535), destination: ProxyEndpoint(host: max, port: 65535)),
                               consumed: tcp6.count))
        // The spec's worst case is UNKNOWN with the longest addresses: exactly 107 bytes.
        let unknown = Array("PROXY UNKNOWN \(max) \(max) 65535 65535\r\n".utf8)
        XCTAssertEqual(unknown.count, 107)
        XCTAssertEqual(ProxyProtocolParser.parse(unknown + request), .header(.local, consumed: 107))
        // One byte longer is over the limit.
        guard case .invalid = ProxyProtocolParser.parse(Array("PROXY UNKNOWN \(max) \(max) 65535 655350\r\n".utf8)) else {
            return XCTFail("a 108-byte v1 header must be invalid")
        }
    }

    func testV1Unknown() {
        XCTAssertEqual(ProxyProtocolParser.parse(Array("PROXY UNKNOWN\r\n".utf8) + request), .header(.local, consumed: 15))
        // The rest of an UNKNOWN line is ignored.
        let header = Array("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".utf8)
        XCTAssertEqual(ProxyProtocolParser.parse(header), .header(.local, consumed: header.count))
    }

    func testV1EveryTruncationNeedsMoreData() {
        let header = Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8)
        for length in 0..<header.count {
            XCTAssertEqual(ProxyProtocolParser.parse(Array(header.prefix(length))), .needMoreData, "prefix of \(length) bytes")
        }
    }

    func testV1Invalid() {
        let cases = [
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",         // a field short
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 9\r\n",   // a field over
            "PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n",   // not an address
            "PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n",     // IPv6 under TCP4
            "PROXY TCP6 192.168.0.1 2001:db8::1 56324 443\r\n",      // IPv4 under TCP6
            "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",     // port out of range
            "PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
            "PROXY TCP4 192.168.0.1 192.168.0.11 +80 443\r\n",
            "PROXY TCP4  192.168.0.1 192.168.0.11 1 443\r\n",        // two spaces
            "PROXY TCP5 192.168.0.1 192.168.0.11 1 443\r\n",
            "PROXY \r\n",
            "PROXY TCP4 192.168.0.1\n",                               // LF without CR
            "PROXY TCP4 192.168.0.1\rX",                              // CR without LF
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u{7F}\r\n",
        ]
        for text in cases {
            guard case .invalid = ProxyProtocolParser.parse(Array(text.utf8)) else {
                XCTFail("\(text.debugDescription) should be invalid, got \(ProxyProtocolParser.parse(Array(text.utf8)))")
                continue
            }
        }
    }

    func testV1WithoutCRLFWithin107BytesIsInvalid() {
        let long = Array(("PROXY TCP6 " + String(repeating: "1", count: 200)).utf8)
        guard case .invalid = ProxyProtocolParser.parse(long) else { return XCTFail("expected invalid") }
        // 106 bytes without CRLF may still be completed.
        XCTAssertEqual(ProxyProtocolParser.parse(Array(long.prefix(106))), .needMoreData)
    }

    // MARK: v2

    private func v2(command: UInt8 = 0x21, family: UInt8, body: [UInt8]) -> [UInt8] {
        ProxyProtocolParser.v2Signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    func testV2TCP4WithTLVs() {
        let addresses: [UInt8] = [127, 0, 0, 5, 10, 0, 0, 1, 0xC7, 0x38, 0x1F, 0x90]   // 51000 → 8080
        let tlvs: [UInt8] = [0x04, 0x00, 0x03, 0, 0, 0,                                // PP2_TYPE_NOOP
                             0x05, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]                 // PP2_TYPE_UNIQUE_ID
        let header = v2(family: 0x11, body: addresses + tlvs)
        XCTAssertEqual(header.count, 16 + 12 + 13)
        let result = ProxyProtocolParser.parse(header + request)
        XCTAssertEqual(result, .header(.proxied(source: ProxyEndpoint(host: "127.0.0.5", port: 51000),
                                                destination: ProxyEndpoint(host: "10.0.0.1", port: 8080)),
                                       consumed: header.count))
        guard case .header(_, let consumed) = result else { return }
        XCTAssertEqual(Array((header + request)[consumed...].prefix(4)), Array("GET ".utf8), "the request starts right after")
    }

    func testV2TCP6() {
        var addresses = [UInt8](repeating: 0, count: 36)
        addresses[0] = 0x20; addresses[1] = 0x01; addresses[2] = 0x0D; addresses[3] = 0xB8; addresses[15] = 0x01   // 2001:db8::1
        addresses[16 + 15] = 0x01                                                                                 // ::1
        addresses[32] = 0x9C; addresses[33] = 0x40                                                                // 40000
        addresses[34] = 0x1F; addresses[35] = 0x90                                                                // 8080
        let header = v2(family: 0x21, body: addresses)
        XCTAssertEqual(ProxyProtocolParser.parse(header),
                       .header(.proxied(source: ProxyEndpoint(host: "2001:db8::1", port: 40000),
                                        destination: ProxyEndpoint(host: "::1", port: 8080)),
                               consumed: 52))
    }

    func testV2LocalAndUnspecifiedFamilies() {
        // HAProxy's health checks with check-send-proxy: LOCAL, family UNSPEC, no addresses.
        XCTAssertEqual(ProxyProtocolParser.parse(v2(command: 0x20, family: 0x00, body: []) + request), .header(.local, consumed: 16))
        // LOCAL with addresses: they are ignored.
        XCTAssertEqual(ProxyProtocolParser.parse(v2(command: 0x20, family: 0x11, body: [UInt8](repeating: 1, count: 12))),
                       .header(.local, consumed: 28))
        XCTAssertEqual(ProxyProtocolParser.parse(v2(family: 0x00, body: [])), .header(.local, consumed: 16))
        // UDP and unix sockets: nothing a TCP port can use; the connection's own addresses stand.
        XCTAssertEqual(ProxyProtocolParser.parse(v2(family: 0x12, body: [UInt8](repeating: 1, count: 12))), .header(.local, consumed: 28))
        XCTAssertEqual(ProxyProtocolParser.parse(v2(family: 0x31, body: [UInt8](repeating: 0, count: 216))), .header(.local, consumed: 232))
    }

    func testV2EveryTruncationNeedsMoreData() {
        let header = v2(family: 0x11, body: [127, 0, 0, 5, 10, 0, 0, 1, 0xC7, 0x38, 0x1F, 0x90, 0x04, 0x00, 0x01, 0x00])
        for length in 0..<header.count {
            XCTAssertEqual(ProxyProtocolParser.parse(Array(header.prefix(length))), .needMoreData, "prefix of \(length) bytes")
        }
    }

    func testV2Invalid() {
        func assertInvalid(_ bytes: [UInt8], _ why: String, line: UInt = #line) {
            guard case .invalid = ProxyProtocolParser.parse(bytes) else {
                return XCTFail("\(why): got \(ProxyProtocolParser.parse(bytes))", line: line)
            }
        }
        assertInvalid(v2(command: 0x11, family: 0x11, body: [UInt8](repeating: 0, count: 12)), "version 1 in a v2 header")
        assertInvalid(v2(command: 0x22, family: 0x11, body: [UInt8](repeating: 0, count: 12)), "command 2")
        assertInvalid(v2(family: 0x11, body: [UInt8](repeating: 0, count: 8)), "TCP4 too short for its addresses")
        assertInvalid(v2(family: 0x21, body: [UInt8](repeating: 0, count: 12)), "TCP6 too short for its addresses")
        assertInvalid(v2(family: 0x41, body: [UInt8](repeating: 0, count: 12)), "family 4")
        assertInvalid(v2(family: 0x13, body: [UInt8](repeating: 0, count: 12)), "protocol 3")
        // A length over the cap is refused from the fixed part alone, before the body arrives.
        let huge = ProxyProtocolParser.v2Signature + [0x21, 0x11, 0xFF, 0xFF]
        assertInvalid(huge, "65535-byte header")
        XCTAssertEqual(ProxyProtocolParser.parse(v2(family: 0x11, body: [UInt8](repeating: 0, count: 100)), maximumV2Length: 116),
                       .header(.proxied(source: ProxyEndpoint(host: "0.0.0.0", port: 0), destination: ProxyEndpoint(host: "0.0.0.0", port: 0)),
                               consumed: 116))
        guard case .invalid = ProxyProtocolParser.parse(v2(family: 0x11, body: [UInt8](repeating: 0, count: 101)), maximumV2Length: 116) else {
            return XCTFail("one byte over the cap")
        }
    }

    // MARK: not PROXY at all

    func testOrdinaryRequestsAreNotProxy() {
        XCTAssertEqual(ProxyProtocolParser.parse(request), .notProxy)
        XCTAssertEqual(ProxyProtocolParser.parse(Array("G".utf8)), .notProxy)
        XCTAssertEqual(ProxyProtocolParser.parse(Array("PROXZ".utf8)), .notProxy)
        XCTAssertEqual(ProxyProtocolParser.parse(Array("PROXYTCP4".utf8)), .notProxy)
        XCTAssertEqual(ProxyProtocolParser.parse([0x0D, 0x0A, 0x0D, 0x0A, 0x01]), .notProxy)
        XCTAssertEqual(ProxyProtocolParser.parse([]), .needMoreData)
        XCTAssertEqual(ProxyProtocolParser.parse(Array("PROX".utf8)), .needMoreData)
        XCTAssertEqual(ProxyProtocolParser.parse([0x0D, 0x0A, 0x0D]), .needMoreData)
    }

    func testRandomBytesNeverReadPastTheBuffer() {
        // Debug builds bounds-check every UnsafeRawBufferPointer subscript, so an
        // out-of-bounds read traps here. Seeded so a failure repeats.
        var generator = SplitMix64(seed: 0x5EED)
        let starts: [[UInt8]] = [[], Array("PROXY ".utf8), Array("PROXY TCP4 ".utf8), ProxyProtocolParser.v2Signature,
                                 ProxyProtocolParser.v2Signature + [0x21, 0x11], ProxyProtocolParser.v2Signature + [0x21, 0x21, 0x00]]
        for round in 0..<20_000 {
            let start = starts[round % starts.count]
            let tail = (0..<Int(generator.next() % 140)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let bytes = start + tail
            if case .header(_, let consumed) = ProxyProtocolParser.parse(bytes) {
                XCTAssertLessThanOrEqual(consumed, bytes.count)
                XCTAssertGreaterThan(consumed, 0)
            }
        }
    }
}

/// A small deterministic generator for the random-input test.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
