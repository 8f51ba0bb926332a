@_exported import TestSupport
import EngineSimulator
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

typealias PanelTestError = TestFailure

/// A blocking TCP connection to 127.0.0.1 (TestSupport's raw-socket client).
typealias Connection = TestHTTPConnection

/// The pieces every panel test starts: the engine simulator and `acerelay serve` in front of it.
enum PanelHarness {
    static let logger: Logger = {
        var logger = Logger(label: "acerelay-panel-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }()

    static let apiKey = "panel-test-key"

    /// The executable SwiftPM built beside this test bundle.
    static var executable: URL { ChildProcess.built("acerelay") }

    /// A new directory, removed when the test process exits.
    static func temporaryDirectory() -> String { TestDirectory.path("panel") }

    /// A port that was free a moment ago (bound to 0, read back, closed).
    static func freePort() throws -> UInt16 { try Loopback.freePort() }

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
    // Set by `start()`, which `init` runs.
    private var child: ChildProcess!

    init(enginePort: UInt16, environment: [String: String] = [:]) throws {
        streamPort = try PanelHarness.freePort()
        apiPort = try PanelHarness.freePort()
        dataDirectory = PanelHarness.temporaryDirectory()
        self.enginePort = enginePort
        self.environment = environment
        try start()
    }

    var apiBase: String { "http://127.0.0.1:\(apiPort)" }

    /// The running (or last) process.
    var process: Process { child.process }

    func start() throws {
        let defaults = ["API_KEY": PanelHarness.apiKey, "HEALTH_CHECK_INTERVAL_S": "1", "COLLECT_INTERVAL_S": "1"]
        child = try ChildProcess(PanelHarness.executable,
                                 ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                  "--engine", "http://127.0.0.1:\(enginePort)", "--provision", "off", "--workers", "2",
                                  "--grace-period", "1", "--data-dir", dataDirectory, "--log-level", "error"],
                                 environment: defaults.merging(environment, uniquingKeysWith: { _, given in given }),
                                 standardError: FileHandle.standardError)
        guard eventually(timeout: 15, { HTTPGet.status(port: apiPort, path: "/health/status") == 200 }) else {
            throw PanelTestError("acerelay serve did not answer on its control port 127.0.0.1:\(apiPort)")
        }
    }

    /// SIGTERM, then the exit; SIGKILL if it takes too long.
    func stop() {
        child.stop(within: 10)
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

/// One-shot GETs for readiness checks.
enum HTTPGet {
    /// The status of `GET path`, or nil when nothing answered.
    static func status(port: UInt16, path: String) -> Int? {
        guard let connection = try? Connection(port: port),
              (try? connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) != nil else { return nil }
        return (try? connection.readHead(before: Date().addingTimeInterval(5)))?.status
    }
}
