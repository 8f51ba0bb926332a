import Foundation
import Testing

/// The panel in a real headless Chromium, driven by `panel_test.py` (Playwright)
/// against a real `acerelay serve` and the engine simulator. The script asks this
/// side, one line at a time on its stdout, for what only the test can do
/// (`REQUEST join`, `REQUEST leave`, `REQUEST restart`) and waits for `DONE` on its stdin.
@Suite(.serialized) struct PanelBrowserTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("panel_test.py").path

    @Test func thePanelShowsLiveDataFollowsPlayersThroughSSEAndKeepsASettingOverARestart() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        // A VPN whose control server nothing answers: the panel shows it down (the other states are the router tests').
        let serve = try Serve(enginePort: simulator.port, environment: [
            "GLUETUN_CONTAINER_NAME": "gluetun", "GLUETUN_API_URL": "http://127.0.0.1:\(try PanelHarness.freePort())",
            "GLUETUN_HEALTH_CHECK_INTERVAL_S": "1",
        ])
        let content = PanelHarness.contentID(11)
        var players = [try StreamPlayer(port: serve.streamPort, content: content)]
        defer { for player in players { player.close() } }
        #expect(eventually(timeout: 15) { players[0].bytesReceived > 188 * 100 }, "the first player got no stream")

        let screenshots = ProcessInfo.processInfo.environment["PANEL_SCREENSHOT_DIR"] ?? PanelHarness.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-u", Self.script, "--panel", "\(serve.apiBase)/panel", "--api-key", PanelHarness.apiKey,
                            "--content-id", content, "--screenshots", screenshots]
        let toScript = Pipe(), fromScript = Pipe(), scriptErrors = Pipe()
        python.standardInput = toScript
        python.standardOutput = fromScript
        python.standardError = scriptErrors
        try python.run()
        let errorText = ErrorCollector(scriptErrors.fileHandleForReading)

        var transcript: [String] = []
        var pending = Data()
        let reader = fromScript.fileHandleForReading
        readLoop: while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                transcript.append(line)
                print("panel_test.py: \(line)")
                guard line.hasPrefix("REQUEST ") else { continue }
                switch line.dropFirst("REQUEST ".count) {
                case "join":
                    players.append(try StreamPlayer(port: serve.streamPort, content: content))
                case "leave":
                    players.removeLast().close()
                case "restart":
                    try serve.restart()
                default:
                    Issue.record("panel_test.py asked for \(line)")
                    break readLoop
                }
                toScript.fileHandleForWriting.write(Data("DONE\n".utf8))
            }
        }
        python.waitUntilExit()
        let errors = errorText.text
        #expect(python.terminationStatus == 0, "panel_test.py failed (exit \(python.terminationStatus)):\n\(errors)")
        #expect(transcript.contains { $0.hasPrefix("SCREENSHOT ") }, "no screenshot saved:\n\(transcript.joined(separator: "\n"))")
        #expect(transcript.last == "PASS", "\(transcript.suffix(5))\n\(errors)")
    }
}

/// Reads a pipe to its end on a thread of its own, so a chatty child never blocks on a full pipe.
final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread { [self] in
            let all = handle.readDataToEndOfFile()
            lock.lock(); data = all; lock.unlock()
            done.signal()
        }.start()
    }

    var text: String {
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
