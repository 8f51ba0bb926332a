import Channels
import EngineFleet
import Foundation
import Logging
import RelayCore
import ServiceLifecycle
import Store
import Streams

/// Holds the service group open until SIGTERM or SIGINT, and tells the main
/// thread the moment shutdown begins. It is the group's last service, so the
/// group (which stops services in reverse order) tells it first; the main
/// thread then gives the rest a time limit before it stops the relay.
struct ShutdownWatchService: Service, CustomStringConvertible {
    let progress: GroupProgress
    var description: String { "shutdown watch" }

    func run() async {
        try? await gracefulShutdown()
        progress.advance(to: .stopping)
    }
}

/// The control API under the composition's policy: failing to open its port
/// stops start-up (one line, non-zero exit, as a unit with
/// `Restart=on-failure` needs); failing after that is logged and the relay
/// keeps serving without it.
struct ControlAPIService: Service, CustomStringConvertible {
    let application: any Service
    /// `--api-listen` as configured, for the error line.
    let address: String
    let progress: GroupProgress
    let logger: Logger
    var description: String { "control API" }

    func run() async throws {
        do {
            try await application.run()
        } catch {
            guard progress.reached(.ready) else { throw StartFailure.controlPort(address: address, error) }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            logger.error("control API stopped; the relay keeps serving", metadata: ["control.reason": "\(error)"])
        }
    }
}

/// Runs `body` every `interval` seconds until graceful shutdown. A run that
/// throws is logged (once, then again when it works) and the next run comes
/// at the usual time: periodic work never stops the relay. Shutdown ends the
/// wait between runs at once but lets a run in progress finish (cut only when
/// the group's time limit escalates to cancellation), so a store read or an
/// engine probe is not reported as failed just because acerelay is stopping.
struct PeriodicService: Service, CustomStringConvertible {
    let description: String
    let interval: Double
    /// What a failed run means to a user, e.g. "cannot reach Docker; static engines keep serving".
    var failure: String? = nil
    let logger: Logger
    let body: @Sendable () async throws -> Void

    func run() async {
        var failures = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await body()
                if failures > 0 {
                    logger.notice("\(description) works again", metadata: ["control.service": "\(description)", "control.failures": "\(failures)"])
                    failures = 0
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                // Repeats of one failure would flood the log every interval: the first is said, the recovery counts them.
                if failures == 1 {
                    logger.error("\(failure ?? "\(description) failed"); retrying every \(interval.formattedSeconds) s",
                                 metadata: ["control.service": "\(description)", "control.reason": "\(error)"])
                }
            }
            await pause(seconds: interval)
        }
    }
}

/// Runs loop detection at the interval its (changeable) settings name; stops like `PeriodicService`.
struct LoopCheckService: Service, CustomStringConvertible {
    let detector: LoopDetector
    var description: String { "loop detection" }

    func run() async {
        await detector.load()
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await detector.check()
            await pause(seconds: Double(max(detector.config.checkIntervalSeconds, 1)))
        }
    }
}

/// Sleeps `seconds`, or less when graceful shutdown begins.
private func pause(seconds: Double) async {
    try? await cancelWhenGracefulShutdown {
        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    }
}

/// A content loop detection refused, with what its players are told.
typealias LoopRefusal = (content: ContentKey, refusal: ContentRefusal)

/// Closes the relay's hub of each content loop detection refuses. The detector
/// pushes its refusals into a stream made before either exists, so the relay
/// (which asks the detector before opening a hub) and the detector (whose
/// refusals close hubs) are built in order, without binding one to the other later.
struct LoopEnforcementService: Service, CustomStringConvertible {
    let relay: RelayServer
    let refusals: AsyncStream<LoopRefusal>
    var description: String { "loop enforcement" }

    func run() async {
        await cancelWhenGracefulShutdown {
            for await refused in refusals {
                relay.closeHub(for: refused.content, refusal: refused.refusal)
            }
        }
    }
}

/// Writes the relay's engine sessions to the store as orchestrator streams, in
/// the order they started and ended (`StreamRecordQueue`).
struct StoreStreamRecorder: RelayObserver {
    let queue: StreamRecordQueue
    let containerName: @Sendable (String) -> String?

    init(store: Store, containerName: @escaping @Sendable (String) -> String?, logger: Logger) {
        queue = StreamRecordQueue(store: store, logger: logger)
        self.containerName = containerName
    }

    /// The store's stream id for a relay session, built where every stream id is.
    static func id(of stream: StreamSessionInfo) -> String {
        StreamRecord.streamID(key: stream.content.value, playbackSessionID: stream.session.playbackSessionID)
    }

    func observe(_ event: RelayEvent) {
        switch event {
        case .streamStarted(let stream):
            queue.submit(.started(StreamRecord(id: Self.id(of: stream), keyType: stream.content.kind.rawValue, key: stream.content.value,
                                               containerID: stream.engine.id, containerName: containerName(stream.engine.id),
                                               playbackSessionID: stream.session.playbackSessionID, statURL: stream.session.statURL,
                                               commandURL: stream.session.commandURL, isLive: stream.session.isLive)))
        case .streamEnded(let stream, let reason):
            queue.submit(.ended(id: Self.id(of: stream), reason: reason, at: Date()))
        default: break
        }
    }
}

extension Double {
    /// 20 for 20.0, 0.5 for 0.5: seconds as people write them.
    var formattedSeconds: String { self == rounded() ? String(Int(self)) : String(self) }
}

/// Measures channel sources until shutdown (`SourceProber`); a probe in flight
/// releases its hub when the group stops it.
struct SourceProbeService: Service, CustomStringConvertible {
    let prober: SourceProber
    var description: String { "source prober" }

    func run() async {
        await cancelWhenGracefulShutdown { await prober.run() }
    }
}
