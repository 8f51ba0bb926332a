import CurlHTTP
import Dispatcharr
import Foundation
import Locking
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real Dispatcharr backend (`shared/tools/real-dispatcharr/start.sh`) on free ports
/// of 127.0.0.1, seeded with `seed.py --api-key`, stopped with SIGTERM at the end.
///
/// Access tokens live `accessTokenSeconds`; the login throttle is the real 3 a minute.
/// `daphne.log` is daphne's access log: one line per request, the server's own count
/// of what acerelay sent, read with `requests(_:_:status:since:)`.
final class RealDispatcharr: Sendable {
    @TaskLocal static var current: RealDispatcharr?

    static let accessTokenSeconds = 4
    private static let unblockAndExec = """
        import os, signal, sys
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
        os.execv(sys.argv[1], sys.argv[1:])
        """
    let baseURL: String
    let user: String
    let password: String
    let apiKey: String
    /// seed.py's answer: `group`, `channels` (`id`, `streams`, `content_ids`).
    let seed: JSONValue
    let directory: URL
    let startupSeconds: Double
    private let process: Process
    private let http = HTTPClient(name: "test-real-disp")

    /// The tool's directory: `../shared/tools/real-dispatcharr` beside the repository, else `/work/shared/...`.
    static func toolDirectory() -> URL? {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [packageRoot.deletingLastPathComponent().appendingPathComponent("shared/tools/real-dispatcharr"),
                          URL(fileURLWithPath: "/work/shared/tools/real-dispatcharr")]
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("start.sh").path) }
    }

    static func start() async throws -> RealDispatcharr {
        guard let tool = toolDirectory() else {
            throw StandInError("real-dispatcharr not found at ../shared/tools/real-dispatcharr or /work/shared/tools/real-dispatcharr")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-real-dispatcharr-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try freePortTriple()
        let process = Process()
        // The test process blocks most signals on its threads and children inherit the mask;
        // start.sh (and what it starts) must see SIGTERM, so a tiny exec wrapper clears it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.unblockAndExec, "/bin/bash", tool.appendingPathComponent("start.sh").path,
                             directory.appendingPathComponent("state").path, String(port)]
        var environment = ProcessInfo.processInfo.environment
        environment["DISPATCHARR_ACCESS_TOKEN_SECONDS"] = String(accessTokenSeconds)
        environment.removeValue(forKey: "DISPATCHARR_LOGIN_THROTTLE")
        environment.removeValue(forKey: "RESET")
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("start.log").path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("start.log"))
        let started = ContinuousClock.now
        try process.run()

        let ready = try await readyLine(output.fileHandleForReading, limit: .seconds(420))
        guard let ready else {
            process.terminate()
            let log = (try? String(contentsOf: directory.appendingPathComponent("start.log"), encoding: .utf8)) ?? ""
            throw StandInError("start.sh gave no READY line; its log: \(log.suffix(1500))")
        }
        // READY http://127.0.0.1:PORT user=admin pass=adminpass123
        let fields = ready.split(separator: " ")
        let base = String(fields[1])
        let user = fields.first { $0.hasPrefix("user=") }.map { String($0.dropFirst(5)) } ?? "admin"
        let password = fields.first { $0.hasPrefix("pass=") }.map { String($0.dropFirst(5)) } ?? "adminpass123"
        let startup = (ContinuousClock.now - started)
        let group = "acerelay-\(UUID().uuidString.prefix(8))"
        let seedFile = directory.appendingPathComponent("seed.json")
        let seeder = Process()
        seeder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        seeder.arguments = ["python3", tool.appendingPathComponent("seed.py").path, "--base", base, "--user", user,
                            "--password", password, "--api-key", "--channels", "3", "--streams-per-channel", "3",
                            "--group", group, "--out", seedFile.path]
        seeder.standardOutput = FileHandle.nullDevice
        try seeder.run()
        while seeder.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        guard seeder.terminationStatus == 0, let seed = JSONValue.parse(Array(try Data(contentsOf: seedFile))),
              let key = seed["api_key"]?.stringValue else {
            process.terminate()
            throw StandInError("seed.py failed with status \(seeder.terminationStatus)")
        }
        let seconds = Double(startup.components.seconds) + Double(startup.components.attoseconds) / 1e18
        print("real Dispatcharr ready at \(base) in \(String(format: "%.1f", seconds)) s (directory \(directory.path))")
        return RealDispatcharr(baseURL: base, user: user, password: password, apiKey: key, seed: seed,
                               directory: directory, startupSeconds: seconds, process: process)
    }

    private init(baseURL: String, user: String, password: String, apiKey: String, seed: JSONValue,
                 directory: URL, startupSeconds: Double, process: Process) {
        self.baseURL = baseURL
        self.user = user
        self.password = password
        self.apiKey = apiKey
        self.seed = seed
        self.directory = directory
        self.startupSeconds = startupSeconds
        self.process = process
    }

    /// SIGTERM to start.sh, which stops daphne, Redis and PostgreSQL; then the directory goes.
    func stop() async {
        process.terminate()
        let stopping = ContinuousClock.now
        let deadline = stopping + .seconds(30)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        print("real Dispatcharr stopped in \(ContinuousClock.now - stopping)")
        http.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Seed data

    var seedGroup: String { seed["group"]?["name"]?.stringValue ?? "" }
    var seedChannels: [(id: Int, streams: [Int], contentIDs: [String])] {
        (seed["channels"]?.arrayValue ?? []).map {
            ($0["id"]?.intValue ?? 0, $0["streams"]?.arrayValue?.compactMap(\.intValue) ?? [],
             $0["content_ids"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
    }

    // MARK: Direct calls, as another tool would make them

    /// A request with the API key straight to the API (not through the module under test).
    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, _ body: JSONValue? = nil) async throws -> (status: Int, json: JSONValue?) {
        var request = HTTPRequest(url: baseURL + path, method: method, headers: [("X-API-Key", apiKey)], maxBodyBytes: 16 << 20)
        if let body { request.body = .json(body.encoded()) }
        let response = try await http.send(request).get()
        return (response.status, JSONValue.parse(response.body))
    }

    /// A request without credentials, to the login endpoint.
    func rawLogin(password: String) async throws -> Int {
        let body = JSONValue.object(["username": .string(user), "password": .string(password)])
        return try await http.send(HTTPRequest(url: baseURL + "/api/accounts/token/", method: .post, body: .json(body.encoded()))).get().status
    }

    func createStream(name: String, url: String, group: Int?) async throws -> Int {
        var body: [String: JSONValue] = ["name": .string(name), "url": .string(url)]
        if let group { body["channel_group"] = .int(group) }
        let (status, json) = try await call(.post, "/api/channels/streams/", .object(body))
        guard status == 201, let id = json?["id"]?.intValue else { throw StandInError("stream creation answered \(status): \(json ?? .null)") }
        return id
    }

    func createGroup(_ name: String) async throws -> Int {
        let (status, json) = try await call(.post, "/api/channels/groups/", .object(["name": .string(name)]))
        guard status == 201, let id = json?["id"]?.intValue else { throw StandInError("group creation answered \(status)") }
        return id
    }

    func createChannel(name: String, group: Int, streams: [Int]) async throws -> Int {
        let body = JSONValue.object(["name": .string(name), "channel_group_id": .int(group), "streams": .array(streams.map { .int($0) })])
        let (status, json) = try await call(.post, "/api/channels/channels/", body)
        guard status == 201, let id = json?["id"]?.intValue else { throw StandInError("channel creation answered \(status)") }
        return id
    }

    func channelStreams(_ id: Int) async throws -> [Int] {
        try await call(.get, "/api/channels/channels/\(id)/").json?["streams"]?.arrayValue?.compactMap(\.intValue) ?? []
    }

    func streamStats(_ id: Int) async throws -> JSONValue {
        try await call(.get, "/api/channels/streams/\(id)/").json?["stream_stats"] ?? .null
    }

    // MARK: The server's access log

    /// A position in the access log: every request answered before this call is logged before it.
    ///
    /// Daphne writes a line once a response is sent, so a request of the caller's own to
    /// a unique path is awaited in the log; everything answered earlier is in by then.
    func logMark() async throws -> Int {
        let marker = "/api/channels/groups/?acerelay_mark=\(UUID().uuidString.prefix(8))"
        _ = try await http.send(HTTPRequest(url: baseURL + marker)).get()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let index = accessLog().firstIndex(where: { $0.target == marker }) { return index + 1 }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw StandInError("the marker request never reached daphne's log")
    }

    /// Requests logged after `mark` (up to a new mark) with this method and path (any
    /// query), optionally only those answered with `status`.
    func requests(_ method: String, _ path: String, status: Int? = nil, since mark: Int) async throws -> Int {
        let end = try await logMark()
        return accessLog()[mark..<(end - 1)].filter { line in
            !line.target.contains("acerelay_mark=") && line.method == method && (line.target == path || line.target.hasPrefix(path + "?"))
                && (status == nil || line.status == status)
        }.count
    }

    /// Daphne's access lines: `127.0.0.1:54732 - - [01/Dec/2026:10:25:43] "POST /api/channels/streams/" 201 592`.
    private func accessLog() -> [(method: String, target: String, status: Int)] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("state/daphne.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
            guard parts.count == 3, line.contains("] \""), let status = Int(parts[2].split(separator: " ").first ?? "") else { return nil }
            let request = parts[1].split(separator: " ")
            guard request.count == 2 else { return nil }
            return (String(request[0]), String(request[1]), status)
        }
    }

    // MARK: Start-up helpers

    private static func readyLine(_ handle: FileHandle, limit: Duration) async throws -> String? {
        let once = OnceContinuation()
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            once.set(continuation)
            Thread {
                var buffer = ""
                while true {
                    let data = handle.availableData
                    if data.isEmpty { once.finish(nil); return }
                    buffer += String(decoding: data, as: UTF8.self)
                    if let line = buffer.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) {
                        once.finish(String(line))
                        // Keep draining so start.sh never blocks on a full pipe.
                        while !handle.availableData.isEmpty {}
                        return
                    }
                }
            }.start()
            Task {
                try? await Task.sleep(for: limit)
                once.finish(nil)
            }
        }
    }

    /// A port P with P+1 and P+2 free too (start.sh puts PostgreSQL and Redis there).
    private static func freePortTriple() throws -> Int {
        for _ in 0..<50 {
            let port = try StandInServer.closedPort()
            if port + 2 < 65536, isFree(port + 1), isFree(port + 2) { return port }
        }
        throw StandInError("no three consecutive free ports on 127.0.0.1")
    }

    private static func isFree(_ port: Int) -> Bool { Loopback.isFree(port) }
}

/// Runs a suite with one real Dispatcharr started before its first test and stopped after its last.
struct RealDispatcharrScope: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let dispatcharr = try await RealDispatcharr.start()
        do {
            try await RealDispatcharr.$current.withValue(dispatcharr) { try await function() }
        } catch {
            await dispatcharr.stop()
            throw error
        }
        await dispatcharr.stop()
    }
}

extension Trait where Self == RealDispatcharrScope {
    /// One real Dispatcharr for the whole suite.
    static var realDispatcharr: RealDispatcharrScope { RealDispatcharrScope() }
}

/// A continuation resumed by whichever comes first: the READY line, EOF, or the time limit.
private final class OnceContinuation: Sendable {
    private let state = Locked<(done: Bool, continuation: CheckedContinuation<String?, Never>?)>((false, nil))

    func set(_ continuation: CheckedContinuation<String?, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func finish(_ line: String?) {
        let waiting = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard !state.done else { return nil }
            state.done = true
            return state.continuation
        }
        waiting?.resume(returning: line)
    }
}
