import EngineSimulator
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct PanelTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Waits for `condition` by checking it every 50 ms, up to `timeout` seconds.
func eventually(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}

/// The pieces every panel test starts: the engine simulator and `acerelay serve` in front of it.
enum PanelHarness {
    static let logger: Logger = {
        var logger = Logger(label: "acerelay-panel-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }()

    static let apiKey = "panel-test-key"

    /// The executable SwiftPM built beside this test bundle.
    static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.fileExists(atPath: directory.appendingPathComponent("acerelay").path) {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("acerelay")
    }

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-panel-\(UUID().uuidString)").path
    }

    /// A port that was free a moment ago (bound to 0, read back, closed).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw PanelTestError("cannot bind a port: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    static func simulator() throws -> EngineSimulator {
        var configuration = EngineSimulatorConfiguration()
        configuration.media = .synthetic(bitsPerSecond: 2_000_000)
        let simulator = try EngineSimulator(configuration: configuration, logger: logger)
        try simulator.start()
        return simulator
    }

    /// A valid content id (40 hex digits) numbered `n`.
    static func contentID(_ n: Int) -> String { String(format: "%040x", n) }
}

/// One `acerelay serve` on fixed ports and a data directory, so a restart finds both again.
final class Serve {
    let streamPort: UInt16
    let apiPort: UInt16
    let dataDirectory: String
    let enginePort: UInt16
    let environment: [String: String]
    private(set) var process = Process()

    init(enginePort: UInt16, environment: [String: String] = [:]) throws {
        streamPort = try PanelHarness.freePort()
        apiPort = try PanelHarness.freePort()
        dataDirectory = PanelHarness.temporaryDirectory()
        self.enginePort = enginePort
        self.environment = environment
        try start()
    }

    var apiBase: String { "http://127.0.0.1:\(apiPort)" }

    func start() throws {
        process = Process()
        process.executableURL = PanelHarness.executable
        process.arguments = ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                             "--engine", "http://127.0.0.1:\(enginePort)", "--provision", "off", "--workers", "2",
                             "--grace-period", "1", "--data-dir", dataDirectory, "--log-level", "error"]
        var env = ProcessInfo.processInfo.environment
        let defaults = ["API_KEY": PanelHarness.apiKey, "HEALTH_CHECK_INTERVAL_S": "1", "COLLECT_INTERVAL_S": "1"]
        for (key, value) in defaults.merging(environment, uniquingKeysWith: { _, given in given }) { env[key] = value }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard eventually(timeout: 15, { HTTPGet.status(port: apiPort, path: "/health/status") == 200 }) else {
            throw PanelTestError("acerelay serve did not answer on its control port 127.0.0.1:\(apiPort)")
        }
    }

    /// SIGTERM, then the exit; SIGKILL if it takes too long.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if !eventually(timeout: 10, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func restart() throws {
        stop()
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}

/// A blocking TCP connection to 127.0.0.1.
final class Connection: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PanelTestError("socket failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw PanelTestError("connect to 127.0.0.1:\(port) failed: errno \(errno)") }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw PanelTestError("send failed: errno \(errno)") }
            sent += n
        }
    }

    /// One recv waiting up to `timeout`: nil on timeout, empty at the end of the stream.
    func receive(max: Int = 65_536, timeout: Double) -> [UInt8]? {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
        return []
    }

    func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// One-shot GETs for readiness checks.
enum HTTPGet {
    /// The status of `GET path`, or nil when nothing answered.
    static func status(port: UInt16, path: String) -> Int? {
        guard let connection = try? Connection(port: port),
              (try? connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) != nil,
              let bytes = connection.receive(timeout: 5), !bytes.isEmpty else { return nil }
        let line = String(decoding: bytes.prefix(64), as: UTF8.self)
        let parts = line.split(separator: " ")
        return parts.count > 1 ? Int(parts[1]) : nil
    }
}

/// A player on the stream port that reads (and discards) the stream on a
/// thread of its own until closed, as a real player keeps up with live.
final class StreamPlayer: @unchecked Sendable {
    private let connection: Connection
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var received = 0

    init(port: UInt16, content: String) throws {
        connection = try Connection(port: port)
        try connection.send("GET /ace/getstream?id=\(content) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: PanelTestPlayer/1.0\r\n\r\n")
        Thread { [self] in
            while true {
                guard let bytes = connection.receive(timeout: 1) else { continue }
                if bytes.isEmpty { break }
                lock.lock(); received += bytes.count; lock.unlock()
            }
            done.signal()
        }.start()
    }

    var bytesReceived: Int { lock.lock(); defer { lock.unlock() }; return received }

    /// Hangs up and waits for the reading thread to end.
    func close() {
        connection.shutdown()
        done.wait()
    }
}
