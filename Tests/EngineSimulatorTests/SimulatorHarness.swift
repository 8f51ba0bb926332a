import EngineSimulator
import Foundation
import Logging
import Testing

/// A started simulator on 127.0.0.1, an ephemeral port, with helpers for the engine API.
final class SimulatorHarness {
    let simulator: EngineSimulator
    var port: UInt16 { simulator.port }

    init(_ configure: (inout EngineSimulatorConfiguration) -> Void = { _ in }) throws {
        var configuration = EngineSimulatorConfiguration()
        configuration.initialBurstSeconds = 0.5
        configure(&configuration)
        var logger = Logger(label: "engine-simulator-test")
        logger.logLevel = .warning
        simulator = try EngineSimulator(configuration: configuration, logger: logger)
        try simulator.start()
    }

    deinit { simulator.shutdown() }

    /// A fresh random content id (40 hex digits).
    static func contentID() -> String {
        (0..<40).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }

    func get(_ path: String, timeout: Double = 5) throws -> TestHTTPResponse {
        try TestHTTP.get(port: port, path, timeout: timeout)
    }

    /// `getstream?format=json`; returns the `response` object (empty when the engine failed).
    func getstream(_ contentID: String, pid: String = "relay-1", selector: String = "id") throws -> [String: Any] {
        let response = try get("/ace/getstream?format=json&\(selector)=\(contentID)&pid=\(pid)")
        #expect(response.status == 200)
        return response.json["response"] as? [String: Any] ?? [:]
    }

    /// Opens the playback URL of a getstream response on 127.0.0.1.
    func openPlayback(_ session: [String: Any]) throws -> TestPlaybackStream {
        try TestPlaybackStream(port: port, path: TestHTTP.path(of: session["playback_url"] as? String ?? ""))
    }

    /// GETs a URL from a getstream response (stat_url, command_url) on 127.0.0.1.
    func follow(_ session: [String: Any], _ key: String, query: String = "") throws -> TestHTTPResponse {
        try get(TestHTTP.path(of: session[key] as? String ?? "") + query)
    }
}
