import EngineSimulator
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two `acerelay serve` nodes, each with its own engine simulator and
/// `--proxy-protocol`, behind a real HAProxy configured from
/// `systemd/haproxy-acerelay.cfg`. Skipped where `haproxy` is not installed.
@Suite(.serialized, .enabled(if: HAProxyCluster.haproxy != nil, "haproxy is not installed (apt-get install -y haproxy)"))
struct HAProxyClusterTests {
    @Test func eachContentHasOneEngineSessionInTheClusterAndPlayersKeepTheirAddresses() throws {
        let cluster = try HAProxyCluster(drainSeconds: 0)
        defer { cluster.stop() }
        var players: [(content: Int, player: TestPlayer)] = []
        for content in 0..<20 {
            for copy in 0..<3 {
                // `content_id=` for one player of each content: it must reach the node `id=` reached.
                let parameter = copy == 2 ? "content_id" : "id"
                let player = try TestPlayer(port: cluster.port, path: "/ace/getstream?\(parameter)=\(RelayHarness.contentID(300 + content))",
                                            source: "127.0.0.\(2 + copy)")
                players.append((content, player))
            }
        }
        for (content, player) in players {
            #expect(try player.readHead(timeout: 15).status == 200, "content \(content)")
            #expect(player.readBody(count: 188 * 20, timeout: 10).count == 188 * 20, "content \(content)")
        }
        let sessions = cluster.simulators.map { $0.totalCounters.getstreamRequests }
        #expect(sessions.reduce(0, +) == 20, "getstream per node: \(sessions)")
        #expect(sessions.allSatisfy { $0 > 0 }, "one node served nothing: \(sessions)")

        // Each node's /ace/status names the players' own addresses, not HAProxy's.
        var addresses: [String] = []
        for node in cluster.nodes {
            let status = try TestPlayer(port: node.streamPort, path: "/ace/status")
            #expect(try status.readHead().status == 200)
            let body = status.readShortBody()
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let clients = (json?["clients"] as? [[String: Any]]) ?? []
            addresses += clients.compactMap { $0["address"] as? String }
        }
        #expect(addresses.count == 60, "\(addresses.count) players in the nodes' status")
        #expect(addresses.allSatisfy { $0.hasPrefix("127.0.0.2:") || $0.hasPrefix("127.0.0.3:") || $0.hasPrefix("127.0.0.4:") },
                "\(addresses.filter { !$0.hasPrefix("127.0.0.2:") && !$0.hasPrefix("127.0.0.3:") && !$0.hasPrefix("127.0.0.4:") })")
    }

    @Test func aKilledNodesPlayersReconnectWithinFiveSecondsAndTheOthersSeeNoGap() throws {
        let cluster = try HAProxyCluster(drainSeconds: 0)
        defer { cluster.stop() }
        var players: [(content: Int, player: TestPlayer)] = []
        for content in 0..<10 {
            let player = try TestPlayer(port: cluster.port, path: RelayHarness.path(RelayHarness.contentID(400 + content)))
            #expect(try player.readHead(timeout: 15).status == 200)
            players.append((content, player))
        }
        for (_, player) in players { _ = player.readBody(count: 188 * 20) }
        // Which node has which content: the one whose simulator saw it.
        let first = cluster.simulators[0]
        let victims = players.filter { first.counters(for: RelayHarness.contentID(400 + $0.content)).getstreamRequests > 0 }
        let survivors = players.filter { first.counters(for: RelayHarness.contentID(400 + $0.content)).getstreamRequests == 0 }
        try #require(!victims.isEmpty && !survivors.isEmpty, "contents all on one node")

        let killed = Date()
        cluster.nodes[0].process.kill()
        for (_, player) in victims { #expect(player.waitForClose(timeout: 3)) }
        for (content, _) in victims {
            let back = eventually(timeout: 5 - Date().timeIntervalSince(killed)) {
                guard let again = try? TestPlayer(port: cluster.port, path: RelayHarness.path(RelayHarness.contentID(400 + content))),
                      (try? again.readHead(timeout: 2).status) == 200 else { return false }
                return again.readBody(count: 188 * 20, timeout: 2).count == 188 * 20
            }
            #expect(back, "content \(content) not playing again within 5 s of its node's death")
        }
        // The other node's players kept streaming throughout: each still reads its stream.
        for (content, player) in survivors {
            let bytes = player.drain(seconds: 0.5).bytes
            #expect(bytes > 0 && !player.peerClosed, "content \(content) on the surviving node stalled")
        }
    }

    @Test func aDrainingNodeLeavesRotationAtOnceWhileItsPlayersKeepPlaying() throws {
        let cluster = try HAProxyCluster(drainSeconds: 4)
        defer { cluster.stop() }
        var players: [(content: Int, player: TestPlayer)] = []
        for content in 0..<8 {
            let player = try TestPlayer(port: cluster.port, path: RelayHarness.path(RelayHarness.contentID(500 + content)))
            #expect(try player.readHead(timeout: 15).status == 200)
            players.append((content, player))
        }
        let first = cluster.simulators[0]
        let draining = players.filter { first.counters(for: RelayHarness.contentID(500 + $0.content)).getstreamRequests > 0 }
        try #require(!draining.isEmpty)
        let signalled = Date()
        kill(cluster.nodes[0].process.process.processIdentifier, SIGTERM)
        let unhealthy = eventually(timeout: 1) {
            guard let check = try? TestPlayer(port: cluster.nodes[0].streamPort, path: "/healthz") else { return false }
            return (try? check.readHead(timeout: 1).status) == 503
        }
        #expect(unhealthy && Date().timeIntervalSince(signalled) < 1.2)
        // Through the drain, the draining node's players keep receiving.
        for (content, player) in draining {
            #expect(player.drain(seconds: 0.4).bytes > 0 && !player.peerClosed, "content \(content) stopped during the drain")
        }
        #expect(cluster.nodes[0].process.waitForExit(timeout: 12))
        #expect(Date().timeIntervalSince(signalled) > 3.5)
        #expect(cluster.nodes[0].process.status == 0)
    }
}

/// The cluster: simulators, nodes, and HAProxy in front of them.
final class HAProxyCluster {
    struct Node {
        let process: ServeProcess
        let streamPort: UInt16
    }

    static let haproxy: String? = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `systemd/haproxy-acerelay.cfg` of this checkout.
    static var exampleConfig: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("systemd/haproxy-acerelay.cfg").path
    }

    let simulators: [EngineSimulator]
    let nodes: [Node]
    let port: UInt16
    private let haproxy: Process
    private let directory: String

    init(drainSeconds: Int) throws {
        directory = ProcessTests.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var simulators: [EngineSimulator] = []
        var nodes: [Node] = []
        for _ in 0..<2 {
            let simulator = try ServeProcessTests.simulator()
            simulators.append(simulator)
            let streamPort = try ProcessTests.freePort()
            let process = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:0", "--proxy-protocol",
                                            "--engine", "http://127.0.0.1:\(simulator.port)", "--provision", "off", "--workers", "2",
                                            "--drain-seconds", "\(drainSeconds)", "--data-dir", ProcessTests.temporaryDirectory(),
                                            "--log-level", "warning"])
            nodes.append(Node(process: process, streamPort: streamPort))
        }
        self.simulators = simulators
        self.nodes = nodes
        port = try ProcessTests.freePort()
        // The example, with this machine's addresses: the bind, the two nodes, no syslog.
        var config = try String(contentsOfFile: Self.exampleConfig, encoding: .utf8)
        config = config.replacingOccurrences(of: "    log /dev/log local0\n", with: "")
        // HAProxy raises its descriptor limit to fit maxconn; a test machine's hard limit may be lower.
        config = config.replacingOccurrences(of: "maxconn 100000", with: "maxconn 2000")
        config = config.replacingOccurrences(of: "bind :8080", with: "bind 127.0.0.1:\(port)")
        config = config.replacingOccurrences(of: "10.0.0.11:8080", with: "127.0.0.1:\(nodes[0].streamPort)")
        config = config.replacingOccurrences(of: "10.0.0.12:8080", with: "127.0.0.1:\(nodes[1].streamPort)")
        let path = directory + "/haproxy.cfg"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        for node in nodes {
            guard eventually(timeout: 15, { (try? TestPlayer(port: node.streamPort, request: "")) != nil }) else {
                throw TestError("node on \(node.streamPort) did not start: \(node.process.errorLines)")
            }
        }
        haproxy = Process()
        haproxy.executableURL = URL(fileURLWithPath: Self.haproxy!)
        haproxy.arguments = ["-db", "-f", path]
        haproxy.standardOutput = FileHandle.nullDevice
        haproxy.standardError = FileHandle.nullDevice
        try haproxy.run()
        // HAProxy answers once it listens and a node is up.
        let port = port
        guard eventually(timeout: 10, {
            guard let check = try? TestPlayer(port: port, path: "/healthz") else { return false }
            return (try? check.readHead(timeout: 1).status) == 200
        }) else { throw TestError("HAProxy did not come up with \(path)") }
    }

    func stop() {
        if haproxy.isRunning {
            haproxy.terminate()
            haproxy.waitUntilExit()
        }
        for node in nodes { node.process.kill() }
        for simulator in simulators { simulator.shutdown() }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
