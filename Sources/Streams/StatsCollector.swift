import CurlHTTP
import Foundation
import Logging
import Store

/// Polls `stat_url` of every started stream, keeps the samples (with a
/// retention limit), and marks streams the engine no longer knows as ended.
///
/// Each poll has a short time limit and at most `concurrency` run at once, so a
/// hung engine costs one slot for a few seconds and never piles up requests.
public final class StatsCollector: Sendable {
    private let store: Store
    private let timeout: TimeInterval
    private let concurrency: Int
    private let retention: TimeInterval
    private let logger: Logger
    private let client: HTTPClient

    public init(store: Store, timeout: TimeInterval = 3, concurrency: Int = 8, retention: TimeInterval = 3_600,
                client: HTTPClient = .shared, logger: Logger) {
        self.store = store
        self.client = client
        self.timeout = timeout
        self.concurrency = max(concurrency, 1)
        self.retention = retention
        self.logger = logger
    }

    /// One round: polls every started stream once, then prunes old samples.
    public func collectOnce() async {
        let streams: [StreamRecord]
        do {
            streams = try await store.streams(status: .started).filter { !($0.statURL ?? "").isEmpty }
        } catch {
            logger.warning("cannot read streams to collect stats", metadata: ["stats.reason": "\(error)"])
            return
        }
        for start in stride(from: 0, to: streams.count, by: concurrency) {
            let batch = streams[start..<min(start + concurrency, streams.count)]
            await withTaskGroup(of: (StreamRecord, StatReading).self) { group in
                for stream in batch {
                    group.addTask { [timeout, client] in (stream, await Self.read(stream.statURL!, timeout: timeout, client: client)) }
                }
                for await (stream, reading) in group { await record(reading, for: stream) }
            }
        }
        do {
            try await store.pruneSamples(before: Date().addingTimeInterval(-retention))
        } catch {
            logger.warning("cannot prune stat samples", metadata: ["stats.reason": "\(error)"])
        }
    }

    static func read(_ url: String, timeout: TimeInterval, client: HTTPClient) async -> StatReading {
        let request = HTTPRequest(url: url, connectTimeout: .seconds(min(timeout, 3)), timeout: .seconds(timeout))
        switch await client.send(request) {
        case .failure(let error):
            return .failed(error.description)
        case .success(let response):
            // The engine answers an unknown session with an error status and a JSON body saying so.
            guard response.status == 200 || (response.status >= 400 && !response.body.isEmpty) else {
                return .failed("stat_url answered HTTP \(response.status)")
            }
            return StatReading.parse(response.body, at: Date())
        }
    }

    private func record(_ reading: StatReading, for stream: StreamRecord) async {
        do {
            switch reading {
            case .sample(let sample):
                try await store.saveSample(streamID: stream.id, at: sample.at, sample)
            case .sessionEnded:
                logger.info("engine no longer knows the session: stream ended", metadata: ["stats.stream": "\(stream.id)"])
                _ = try await store.endStream(id: stream.id, reason: "engine ended the session")
            case .failed(let why):
                logger.debug("stat poll failed", metadata: ["stats.stream": "\(stream.id)", "stats.reason": "\(why)"])
            }
        } catch {
            logger.warning("cannot store stats", metadata: ["stats.reason": "\(error)"])
        }
    }
}
