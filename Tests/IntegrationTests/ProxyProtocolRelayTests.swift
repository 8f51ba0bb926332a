import Foundation
import Testing
@testable import RelayCore
#if canImport(Glibc)
import Glibc
#endif

/// PROXY protocol v1/v2 headers before the request, over real sockets, as
/// HAProxy's `send-proxy` / `send-proxy-v2` send them.
@Suite struct ProxyProtocolRelayTests {
    static let get = "GET /ace/getstream?id=\(RelayHarness.contentID(7)) HTTP/1.1\r\nHost: relay\r\n\r\n"

    /// A v2 header for TCP over IPv4 (`PROXY` command, or `LOCAL`).
    static func v2(source: (String, UInt16), destination: (String, UInt16), local: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        bytes.append(local ? 0x20 : 0x21)  // version 2, LOCAL or PROXY
        bytes.append(local ? 0x00 : 0x11)  // AF_INET, STREAM (UNSPEC for LOCAL)
        let body: [UInt8] = local ? [] : ipv4(source.0) + ipv4(destination.0)
            + [UInt8(source.1 >> 8), UInt8(source.1 & 0xFF), UInt8(destination.1 >> 8), UInt8(destination.1 & 0xFF)]
        bytes += [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return bytes
    }

    static func ipv4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }

    /// A connection that sends `bytes` in pieces of `split` (all at once for nil).
    static func connect(port: UInt16, bytes: [UInt8], split: Int? = nil) throws -> TestPlayer {
        let player = try TestPlayer(port: port, request: "")
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + (split ?? bytes.count))
            let piece = Array(bytes[offset..<end])
            _ = piece.withUnsafeBytes { Glibc.send(player.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            offset = end
            if split != nil { usleep(30_000) }
        }
        return player
    }

    func addresses(_ harness: RelayHarness) -> [String] { harness.relay.status().clients.map(\.address) }

    /// Behind HAProxy every connection comes from the proxy: the bound on new
    /// contents counts the address the PROXY header names.
    @Test func contentsPerAddressCountTheProxiedAddressNotTheProxy() throws {
        let harness = try RelayHarness(relay: { $0.proxyProtocol = true; $0.maxContentsPerAddress = 2 })
        defer { harness.stop() }
        func play(_ content: Int, from source: String) throws -> TestPlayer {
            let header = Array("PROXY TCP4 \(source) 127.0.0.1 40123 8080\r\n".utf8)
            let request = "GET /ace/getstream?id=\(RelayHarness.contentID(content)) HTTP/1.1\r\nHost: relay\r\n\r\n"
            return try Self.connect(port: harness.port, bytes: header + Array(request.utf8))
        }
        let first = try play(20, from: "198.51.100.7")
        let second = try play(21, from: "198.51.100.7")
        #expect(try first.readHead().status == 200)
        #expect(try second.readHead().status == 200)
        let third = try play(22, from: "198.51.100.7")
        #expect(try third.readHead().status == 429)
        let elsewhere = try play(22, from: "198.51.100.8")
        #expect(try elsewhere.readHead().status == 200)
    }

    @Test func aV1HeaderMakesTheSourceThePlayersAddress() throws {
        let harness = try RelayHarness(relay: { $0.proxyProtocol = true })
        defer { harness.stop() }
        let header = Array("PROXY TCP4 198.51.100.7 127.0.0.1 40123 8080\r\n".utf8)
        let player = try Self.connect(port: harness.port, bytes: header + Array(Self.get.utf8), split: 9)
        #expect(try player.readHead().status == 200)
        #expect(player.readBody(count: 188 * 20).count == 188 * 20)
        #expect(addresses(harness) == ["198.51.100.7:40123"])
        let status = try Self.connect(port: harness.port, bytes: header + Array("GET /ace/status HTTP/1.1\r\n\r\n".utf8))
        #expect(try status.readHead().status == 200)
        #expect(status.readShortBody().contains("198.51.100.7:40123"))
    }

    @Test func aV2HeaderMakesTheSourceThePlayersAddressEvenWhenSplit() throws {
        let harness = try RelayHarness(relay: { $0.proxyProtocol = true })
        defer { harness.stop() }
        let header = Self.v2(source: ("203.0.113.9", 51000), destination: ("127.0.0.1", 8080))
        let player = try Self.connect(port: harness.port, bytes: header + Array(Self.get.utf8), split: 5)
        #expect(try player.readHead().status == 200)
        #expect(addresses(harness) == ["203.0.113.9:51000"])
    }

    @Test func aV2LocalHeaderKeepsTheSocketsPeerAndPlainHTTPStillWorks() throws {
        let harness = try RelayHarness(relay: { $0.proxyProtocol = true })
        defer { harness.stop() }
        let local = try Self.connect(port: harness.port, bytes: Self.v2(source: ("0.0.0.0", 0), destination: ("0.0.0.0", 0), local: true)
                                         + Array(Self.get.utf8))
        #expect(try local.readHead().status == 200)
        #expect(eventually(timeout: 2) { addresses(harness).count == 1 })
        #expect(addresses(harness).allSatisfy { $0.hasPrefix("127.0.0.1:") }, "\(addresses(harness))")
        // A health check without check-send-proxy: plain HTTP.
        let health = try TestPlayer(port: harness.port, path: "/healthz")
        #expect(try health.readHead().status == 200)
    }

    @Test func aBrokenHeaderIsA400() throws {
        let harness = try RelayHarness(relay: { $0.proxyProtocol = true })
        defer { harness.stop() }
        let player = try Self.connect(port: harness.port, bytes: Array("PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n".utf8) + Array(Self.get.utf8))
        #expect(try player.readHead().status == 400)
        #expect(harness.simulator.totalCounters.getstreamRequests == 0)
    }

    @Test(arguments: [1, 2])
    func withoutTheFlagAPROXYHeaderIsA400(version: Int) throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let header = version == 1 ? Array("PROXY TCP4 198.51.100.7 127.0.0.1 40123 8080\r\n".utf8)
            : Self.v2(source: ("203.0.113.9", 51000), destination: ("127.0.0.1", 8080))
        let player = try Self.connect(port: harness.port, bytes: header + Array(Self.get.utf8))
        #expect(try player.readHead().status == 400)
        #expect(harness.simulator.totalCounters.getstreamRequests == 0)
        // Plain players are unaffected.
        let plain = try TestPlayer(port: harness.port, path: RelayHarness.path(RelayHarness.contentID(8)))
        #expect(try plain.readHead().status == 200)
    }
}
