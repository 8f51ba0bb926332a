import CurlHTTP
import Dispatcharr
import EngineSimulator
import Foundation
import Logging
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The whole chain with real parts, all on 127.0.0.1: the real `acerelay serve`
/// binary, the real Dispatcharr backend, and the engine simulator playing real
/// ffmpeg media. A Dispatcharr channel of three AceStream streams (360p with few
/// peers, refused by the engine, 720p with many peers) and one other stream is
/// picked up, probed, reordered best first in Dispatcharr, and its streams'
/// `stream_stats` carry what the packets said; Dispatcharr paused leaves playback alone.
@Suite(.serialized, .realDispatcharr, .timeLimit(.minutes(10)))
struct ChannelSyncEndToEndTests {
    @Test func aDispatcharrChannelIsProbedReorderedBestFirstAndDescribedThenDispatcharrPausedLeavesPlaybackAlone() async throws {
        let server = try #require(RealDispatcharr.current)
        let started = ContinuousClock.now
        let scratch = try TestDirectory("e2e")
        let directory = scratch.path

        // Media: what ffprobe says of it is what stream_stats must say.
        let sdPath = directory + "/sd.ts", hdPath = directory + "/hd.ts"
        try EngineSimulator.makeTestMedia(at: sdPath, seconds: 6, videoBitrate: "500k", size: "640x360")
        try EngineSimulator.makeTestMedia(at: hdPath, seconds: 6, videoBitrate: "2500k", size: "1280x720")
        let sd = try Probed(sdPath), hd = try Probed(hdPath)
        #expect(sd.resolution == "640x360" && hd.resolution == "1280x720")

        let (a, b, c) = (E2E.contentID(), E2E.contentID(), E2E.contentID())
        var configuration = EngineSimulatorConfiguration()
        configuration.mediaByContent = [a: .file(sdPath), b: .file(hdPath)]
        // A: few peers downloading slower than it plays; B: a big swarm well ahead.
        configuration.statsByContent = [a: SimulatorSwarm(peers: 2, speedDownKBps: 40), b: SimulatorSwarm(peers: 40, speedDownKBps: 900)]
        let simulator = try EngineSimulator(configuration: configuration, logger: E2E.logger)
        try simulator.start()
        defer { simulator.shutdown() }
        simulator.setFault(.loadError, for: c)

        // Dispatcharr: one channel, streams A, C, B pointing at acerelay's stream port, then another stream.
        let streamPort = try E2E.freePort(), apiPort = try E2E.freePort()
        let groupName = "e2e-\(UUID().uuidString.prefix(8))"
        let group = try await server.createGroup(groupName)
        func ace(_ id: String) -> String { "http://127.0.0.1:\(streamPort)/ace/getstream?id=\(id)" }
        let streamA = try await server.createStream(name: "A 360p", url: ace(a), group: group)
        let streamC = try await server.createStream(name: "C refused", url: ace(c), group: group)
        let streamB = try await server.createStream(name: "B 720p", url: ace(b), group: group)
        let other = try await server.createStream(name: "other", url: "http://127.0.0.1:9/other.ts", group: group)
        let channel = try await server.createChannel(name: "End to end \(groupName)", group: group, streams: [streamA, streamC, streamB, other])
        #expect(try await server.channelStreams(channel) == [streamA, streamC, streamB, other])
        // Another tool's stream_stats, before acerelay starts: its own key must survive the merge.
        let otherTool: [String: JSONValue] = ["by_another_tool": .string("keep me"), "video_codec": .string("mpeg2video")]
        for stream in [streamA, streamB] {
            try await server.call(.patch, "/api/channels/streams/\(stream)/", .object(["stream_stats": .object(otherTool)]))
        }
        let channelPath = "/api/channels/channels/\(channel)/"
        let mark = try await server.logMark()

        let serve = try E2EServe(streamPort: streamPort, apiPort: apiPort, enginePort: simulator.port, dataDirectory: directory + "/data", environment: [
            "DISPATCHARR_BASE_URL": server.baseURL, "DISPATCHARR_API_KEY": server.apiKey,
            "DISPATCHARR_CHANNEL_GROUPS": groupName, "DISPATCHARR_SYNC_INTERVAL_S": "2",
            "CHANNEL_PROBE_SECONDS": "2", "CHANNEL_PROBE_INTERVAL_S": "3600", "CHANNEL_PROBE_CONCURRENCY": "2",
        ])
        defer { serve.stop() }
        let control = E2EControl(port: apiPort)
        defer { control.shutdown() }

        // 1. The channel is picked up, origin dispatcharr, its sources the three AceStream streams.
        let adopted = try await eventually(seconds: 30, "the channel never appeared in GET /channels") {
            try await control.channel(dispatcharrID: channel)
        }
        #expect(adopted["origin"]?.stringValue == "dispatcharr")
        let adoptedSources = adopted["sources"]?.arrayValue ?? []
        #expect(Set(adoptedSources.compactMap { $0["content_id"]?.stringValue }) == [a, b, c])
        #expect(Set(adoptedSources.compactMap { $0["dispatcharr_stream_id"]?.intValue }) == [streamA, streamB, streamC])

        // 2. Every source measured once (probes start spread over up to a minute), and the
        //    order in Dispatcharr read back: working by score, the refused one last of the
        //    AceStream ones, the other stream after them.
        let measured = try await eventually(seconds: 150, "the sources were not all measured and reordered") { () -> JSONValue? in
            guard let found = try await control.channel(dispatcharrID: channel),
                  let sources = found["sources"]?.arrayValue, sources.count == 3,
                  sources.allSatisfy({ $0["last_measured_at"]?.stringValue != nil }) else { return nil }
            let order = try await server.channelStreams(channel)
            return order == [streamB, streamA, streamC, other] ? found : nil
        }
        let sources = measured["sources"]?.arrayValue ?? []
        print("measured after \(ContinuousClock.now - started): \(measured)")
        #expect(sources.compactMap { $0["content_id"]?.stringValue } == [b, a, c])
        let scoreA = sources[1]["score"]?.intValue ?? -1, scoreB = sources[0]["score"]?.intValue ?? -1
        #expect(scoreB > scoreA && scoreA > 0, "scores B \(scoreB), A \(scoreA): \(measured)")
        #expect(sources[2]["score"]?.intValue == 0)
        #expect(sources[2]["reason"]?.stringValue == "refused", "\(sources[2])")
        #expect(sources[0]["facts"]?["height"]?.intValue == 720 && sources[1]["facts"]?["height"]?.intValue == 360)

        // 3. stream_stats: the media's facts merged over what the other tool wrote.
        _ = try await eventually(seconds: 30, "acerelay's writes to Dispatcharr never finished") { () -> Bool? in
            let status = try await control.dispatcharrStatus()
            return status["pending_writes"]?.intValue == 0 && (status["writes_done"]?.intValue ?? 0) >= 3 ? true : nil
        }
        for (stream, media, name) in [(streamB, hd, "B"), (streamA, sd, "A")] {
            let stats = try await server.streamStats(stream)
            print("stream_stats of \(name): \(stats)")
            #expect(stats["resolution"]?.stringValue == media.resolution, "\(name): \(stats)")
            #expect(stats["video_codec"]?.stringValue == "h264", "\(name): \(stats)")
            #expect(stats["audio_codec"]?.stringValue == media.audioCodec, "\(name): \(stats)")
            #expect(stats["audio_channels"]?.intValue == media.channels, "\(name): \(stats)")
            #expect(abs((stats["source_fps"].flatMap(E2E.number) ?? 0) - media.fps) < 0.01, "\(name): \(stats)")
            #expect((stats["ffmpeg_output_bitrate"]?.intValue ?? 0) > 0, "\(name): \(stats)")
            #expect(stats["by_another_tool"]?.stringValue == "keep me", "\(name): \(stats)")
        }
        #expect(try await server.streamStats(streamC) == .null, "a refused source has no facts to write")

        // 4. Writes: one PATCH per real reorder (never more; a reorder superseded while
        //    still queued is sent once as the newer order), one stream_stats PATCH per
        //    stream whose facts changed, none for the refused one.
        let reorders = try await control.metric("acerelay_channel_reorders_total")
        let channelPatches = try await server.requests("PATCH", channelPath, since: mark)
        #expect(try await server.requests("PATCH", channelPath, status: 200, since: mark) == channelPatches)
        #expect(channelPatches >= 1 && Double(channelPatches) <= reorders, "\(channelPatches) PATCHes for \(reorders) reorders")
        print("channel PATCHes: \(channelPatches), reorders acerelay made: \(Int(reorders))")
        #expect(try await server.requests("PATCH", "/api/channels/streams/\(streamA)/", since: mark) == 1)
        #expect(try await server.requests("PATCH", "/api/channels/streams/\(streamB)/", since: mark) == 1)
        #expect(try await server.requests("PATCH", "/api/channels/streams/\(streamC)/", since: mark) == 0)

        // 5. Stable scores: two more syncs (each reads the channel list) and nothing written.
        let stable = try await server.logMark()
        _ = try await eventually(seconds: 20, "acerelay did not sync twice more") { () -> Bool? in
            try await server.requests("GET", "/api/channels/channels/", status: 200, since: stable) >= 2 ? true : nil
        }
        #expect(try await server.requests("PATCH", channelPath, since: stable) == 0)
        for stream in [streamA, streamB, streamC] {
            #expect(try await server.requests("PATCH", "/api/channels/streams/\(stream)/", since: stable) == 0)
        }
        #expect(try await control.metric("acerelay_channel_reorders_total") == reorders)
        #expect(try await server.channelStreams(channel) == [streamB, streamA, streamC, other])

        // 6. Dispatcharr paused (SIGSTOP of daphne): the status says so, and a player on B
        //    keeps receiving bytes throughout.
        let player = try E2EPlayer(port: streamPort, contentID: b)
        defer { player.close() }
        _ = try await eventually(seconds: 15, "the player on B received nothing") { player.bytesReceived > 188 * 1000 ? true : nil }
        let daphne = try #require(E2E.daphnePID(port: URL(string: server.baseURL)?.port ?? 0), "no daphne process found")
        #expect(kill(daphne, SIGSTOP) == 0)
        var paused = true
        defer { if paused { kill(daphne, SIGCONT) } }
        let beforePause = player.bytesReceived
        let pausedAt = ContinuousClock.now
        let unreachable = try await eventually(seconds: 40, "/orchestrator/status never showed Dispatcharr unreachable") { () -> JSONValue? in
            let status = try await control.dispatcharrStatus()
            return status["reachable"] == .bool(false) && status["last_error"]?.stringValue != nil ? status : nil
        }
        print("Dispatcharr paused: \(unreachable)")
        let atUnreachable = player.bytesReceived
        let pausedFor = Double((ContinuousClock.now - pausedAt) / .milliseconds(1)) / 1000
        // Data kept flowing while the sync waited on the paused Dispatcharr (its request
        // timeout), at no less than a third of B's own rate, and it still flows.
        #expect(pausedFor >= 2, "unreachable after \(pausedFor) s")
        #expect(Double(atUnreachable - beforePause) > hd.bytesPerSecond * pausedFor / 3, "\(atUnreachable - beforePause) bytes while paused")
        try await Task.sleep(for: .seconds(2))
        #expect(player.bytesReceived > atUnreachable + 188 * 100)
        #expect(player.isOpen)
        #expect(try await control.status(path: "/health/status") == 200)

        kill(daphne, SIGCONT)
        paused = false
        _ = try await eventually(seconds: 30, "acerelay never saw Dispatcharr again") { () -> Bool? in
            try await control.dispatcharrStatus()["reachable"] == .bool(true) ? true : nil
        }
        print("end to end took \(ContinuousClock.now - started) (Dispatcharr started in \(server.startupSeconds) s)")
    }
}

// MARK: - Helpers

/// Polls `probe` every 250 ms until it answers non-nil, or fails the test after `seconds`.
private func eventually<T>(seconds: Double, _ what: String, _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(250))
    }
    if let value = try await probe() { return value }
    throw StandInError(what + " within \(seconds) s")
}

private enum E2E {
    static let logger: Logger = {
        var logger = Logger(label: "acerelay-e2e") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }()

    /// A random valid content id.
    static func contentID() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased().prefix(40).description
    }

    static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let n): Double(n)
        case .double(let d): d
        default: nil
        }
    }

    /// A port that was free a moment ago.
    static func freePort() throws -> Int { try StandInServer.closedPort() }

    /// The daphne that start.sh runs on `port`: found in /proc by its command line.
    static func daphnePID(port: Int) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.contains(where: { $0.hasSuffix("/daphne") }) else { continue }
            if let index = arguments.firstIndex(of: "-p"), index + 1 < arguments.count, arguments[index + 1] == String(port) { return pid }
        }
        return nil
    }
}

/// What ffprobe says of a media file.
private typealias Probed = FFprobe

private extension FFprobe {
    var resolution: String { "\(width)x\(height)" }
    var channels: Int { audioChannels }
    var bytesPerSecond: Double { (size ?? 0) / max(duration ?? 1, 1) }
}

/// `acerelay serve`, the binary SwiftPM built beside this test bundle, its stderr in a file.
private final class E2EServe {
    private let child: ChildProcess
    var process: Process { child.process }
    let logPath: String

    init(streamPort: Int, apiPort: Int, enginePort: UInt16, dataDirectory: String, environment: [String: String]) throws {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DISPATCHARR_") && !$0.key.hasPrefix("CHANNEL_") && $0.key != "API_KEY" }
        for (key, value) in environment { env[key] = value }
        logPath = dataDirectory + ".log"
        child = try ChildProcess(ChildProcess.built("acerelay"),
                                 ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                  "--engine", "http://127.0.0.1:\(enginePort)", "--provision", "off", "--workers", "2",
                                  "--data-dir", dataDirectory, "--log-level", "info"],
                                 environment: env, inheritEnvironment: false, errorsPath: logPath)
    }

    /// SIGTERM, SIGKILL after 10 s; the log's warnings are printed for the record.
    func stop() {
        guard child.isRunning else { return }
        child.stop(within: 10)
        let notable = child.errorLines.filter { $0.contains("warning") || $0.contains("error") || $0.contains("reorder") }
        print("acerelay log (\(notable.count) notable lines):\n" + notable.suffix(40).joined(separator: "\n"))
    }
}

/// acerelay's control port, read as a client would.
private final class E2EControl: Sendable {
    let base: String
    private let http = HTTPClient(name: "test-e2e-control")

    init(port: Int) { base = "http://127.0.0.1:\(port)" }

    func shutdown() { http.shutdown() }

    func status(path: String) async throws -> Int? {
        guard case .success(let response) = await http.send(HTTPRequest(url: base + path)) else { return nil }
        return response.status
    }

    /// nil while acerelay is not answering yet.
    func json(_ path: String) async throws -> JSONValue? {
        guard case .success(let response) = await http.send(HTTPRequest(url: base + path, maxBodyBytes: 8 << 20)),
              response.status == 200 else { return nil }
        return JSONValue.parse(response.body)
    }

    /// The channel read from Dispatcharr channel `id`, as `GET /channels` lists it.
    func channel(dispatcharrID id: Int) async throws -> JSONValue? {
        guard let listing = try await json("/channels") else { return nil }
        let channels = listing.arrayValue ?? listing["channels"]?.arrayValue ?? []
        return channels.first { $0["dispatcharr_channel_id"]?.intValue == id }
    }

    func dispatcharrStatus() async throws -> JSONValue {
        try await json("/orchestrator/status")?["dispatcharr"] ?? .null
    }

    /// One sample's value from `/metrics` (the sum over its label sets); 0 when absent.
    func metric(_ name: String) async throws -> Double {
        guard case .success(let response) = await http.send(HTTPRequest(url: base + "/metrics", maxBodyBytes: 8 << 20)) else { return 0 }
        return String(decoding: response.body, as: UTF8.self).split(separator: "\n").reduce(0) { sum, line in
            guard line.hasPrefix(name + " ") || line.hasPrefix(name + "{"), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { return sum }
            return sum + value
        }
    }
}

/// A player on the stream port reading (and discarding) the stream on a thread of its own.
private typealias E2EPlayer = StreamPlayer

private extension StreamPlayer {
    convenience init(port: Int, contentID: String) throws {
        try self.init(port: UInt16(port), content: contentID, userAgent: "E2EPlayer/1.0")
    }
}
