import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An engine on 127.0.0.1 that answers `get_status` like a healthy engine and
/// `getstream` with something no engine should send: the relay must give the
/// player a clear error within its time limits, its memory unchanged.
@Suite(.serialized) struct EngineAnswerBoundsTests {
    @Test(arguments: [FakeEngine.Answer.hugeBody, .endlessHeaders, .trickle])
    func aBadGetstreamAnswerIsAClearErrorWithinTheTimeLimitAndMemoryStaysFlat(_ answer: FakeEngine.Answer) throws {
        let engine = try FakeEngine(answer: answer)
        defer { engine.stop() }
        let (streamPort, apiPort) = (try ProcessTests.freePort(), try ProcessTests.freePort())
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                      "--engine", "http://127.0.0.1:\(engine.port)", "--provision", "off",
                                      "--engine-timeout", "2", "--start-timeout", "8", "--early-head-after", "30",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "critical"],
                                     environment: ["HEALTH_CHECK_INTERVAL_S": "1"])
        defer { serve.kill() }
        #expect(eventually(timeout: 15) { (try? TestPlayer(port: streamPort, request: "")) != nil })
        #expect(eventually(timeout: 10) { engine.statusRequests > 0 }, "the relay never probed the fake engine")
        let before = try #require(residentKiB(of: serve.relayPID))

        let started = Date()
        let player = try TestPlayer(port: streamPort, path: RelayHarness.path(RelayHarness.contentID(800)))
        let head = try player.readHead(timeout: 15)
        let waited = Date().timeIntervalSince(started)
        let body = player.readShortBody()
        #expect(head.status == 503, "\(body)")
        #expect(body.contains(answer.expectedReason), "\(answer): \(body)")
        // The start timeout bounds the wait, whatever the engine does.
        #expect(waited < 10, "the player waited \(waited) s")
        #expect(engine.getstreamRequests >= 1)

        let after = try #require(residentKiB(of: serve.relayPID))
        #expect(after - before < 16 * 1024, "resident memory grew from \(before) KiB to \(after) KiB")
        #expect(serve.process.isRunning)
    }

    private func residentKiB(of pid: Int32) -> Int? {
        let text = procFile("/proc/\(pid)/status")
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ")[1])
    }
}

/// A stand-in engine with one bad way of answering `getstream`.
final class FakeEngine: @unchecked Sendable {
    enum Answer: String, CustomStringConvertible, Sendable {
        /// A JSON body of 8 MiB, beyond the relay's 1 MiB cap.
        case hugeBody
        /// Header lines without end.
        case endlessHeaders
        /// One byte a second.
        case trickle

        var description: String { rawValue }

        /// What the player's error says.
        var expectedReason: String {
            switch self {
            case .hugeBody: "larger than"
            case .endlessHeaders: "headers are larger than"
            case .trickle: "timed out"
            }
        }
    }

    let answer: Answer
    private let listener: Int32
    let port: UInt16
    private let lock = NSLock()
    private var running = true
    private var counts = (status: 0, getstream: 0)

    var statusRequests: Int { lock.lock(); defer { lock.unlock() }; return counts.status }
    var getstreamRequests: Int { lock.lock(); defer { lock.unlock() }; return counts.getstream }
    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    init(answer: Answer) throws {
        self.answer = answer
        let listening = try Loopback.listen()
        listener = listening.fd
        port = listening.port
        Thread { [self] in acceptLoop() }.start()
    }

    func stop() {
        lock.lock(); running = false; lock.unlock()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while isRunning {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: head, as: UTF8.self).contains("\r\n\r\n") {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            head += buffer[0..<n]
        }
        let request = String(decoding: head, as: UTF8.self)
        if request.contains("method=get_status") {
            lock.lock(); counts.status += 1; lock.unlock()
            let body = #"{"result":{"version":{"version":"3.2.3","platform":"linux"},"status":"idle"},"error":null}"#
            _ = write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
            return
        }
        guard request.contains("/ace/getstream") else {
            _ = write(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        }
        lock.lock(); counts.getstream += 1; lock.unlock()
        switch answer {
        case .hugeBody:
            guard write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"response\":{\"playback_url\":\"") else { return }
            let filler = String(repeating: "a", count: 64 * 1024)
            for _ in 0..<128 where isRunning { guard write(fd, filler) else { return } }
        case .endlessHeaders:
            guard write(fd, "HTTP/1.1 200 OK\r\n") else { return }
            let line = "X-Filler: " + String(repeating: "b", count: 1000) + "\r\n"
            while isRunning { guard write(fd, line) else { return } }
        case .trickle:
            guard write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n") else { return }
            while isRunning {
                guard write(fd, "{") else { return }
                sleep(1)
            }
        }
    }

    private func write(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }
}
