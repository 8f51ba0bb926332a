import EngineFleet
import Foundation
import Logging
import RelayCore
import ServiceLifecycle
import Store

/// Keeps the relay running under the service group and stops it (every engine
/// session, then the threads) on graceful shutdown. The relay is started before
/// the group runs, at the relay's priority.
struct RelayService: Service {
    let relay: RelayServer

    func run() async throws {
        try? await gracefulShutdown()
        relay.shutdown(timeout: 5)
    }
}

/// Runs `body` every `interval` seconds until graceful shutdown.
struct PeriodicService: Service, CustomStringConvertible {
    let description: String
    let interval: Double
    let body: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await body()
                try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }
    }
}

/// Runs loop detection at the interval its (changeable) settings name.
struct LoopCheckService: Service {
    let detector: LoopDetector

    func run() async throws {
        await detector.load()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await detector.check()
                try? await Task.sleep(for: .seconds(max(detector.config.checkIntervalSeconds, 1)))
            }
        }
    }
}

/// Writes the relay's engine sessions to the store as orchestrator streams.
struct StoreStreamRecorder: RelayObserver {
    let store: Store
    let containerName: @Sendable (String) -> String?
    let logger: Logger

    func observe(_ event: RelayEvent) {
        switch event {
        case .streamStarted(let stream): streamStarted(stream)
        case .streamEnded(let stream, let reason): streamEnded(stream, reason: reason)
        default: break
        }
    }

    func streamStarted(_ stream: StreamSessionInfo) {
        let record = StreamRecord(id: stream.streamID, keyType: stream.content.kind.rawValue, key: stream.content.value,
                                  containerID: stream.engine.id, containerName: containerName(stream.engine.id),
                                  playbackSessionID: stream.session.playbackSessionID, statURL: stream.session.statURL,
                                  commandURL: stream.session.commandURL, isLive: stream.session.isLive)
        Task { [store, logger] in
            do { try await store.saveStream(record) } catch {
                logger.warning("cannot record a stream start", metadata: ["store.reason": "\(error)"])
            }
        }
    }

    func streamEnded(_ stream: StreamSessionInfo, reason: String) {
        Task { [store, logger] in
            do { _ = try await store.endStream(id: stream.streamID, reason: reason) } catch {
                logger.warning("cannot record a stream end", metadata: ["store.reason": "\(error)"])
            }
        }
    }
}
