import Logging
import Synchronization

/// The engine side of one hub: `getstream` for a session, the playback
/// transfer, and `stop`, on the owning worker's curl multi handle.
///
/// Loop-confined to the hub's owner. Every start or cancel moves to a new
/// generation, so an answer of a transfer that was replaced never reaches the hub.
final class UpstreamSession {
    private let curl: CurlMulti
    private let configuration: RelayConfiguration
    /// The engine serves one player per content: the relay is that player, under its own id.
    private let pid = "acerelay-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    private var request: CurlTransfer?
    private var playback: CurlTransfer?
    private var generation = 0
    /// The engine session granted by the last `getstream`, until stopped.
    private(set) var session: EngineSession?

    init(curl: CurlMulti, configuration: RelayConfiguration) {
        self.curl = curl
        self.configuration = configuration
    }

    /// Asks `engine` for a session for `content` (`getstream?format=json`), after
    /// cancelling whatever transfer is running. `completion` gets the session or why not.
    func requestSession(engine: EngineEndpoint, content: ContentKey, completion: @escaping (Result<EngineSession, EngineAttemptError>) -> Void) {
        cancel()
        let expected = generation
        let transfer = CurlTransfer(
            url: EngineAPI.getstreamURL(engine: engine, content: content, pid: pid),
            connectTimeout: min(configuration.engineRequestTimeout, 5),
            timeout: configuration.engineRequestTimeout,
            userAgent: configuration.engineUserAgent)
        request = transfer
        curl.start(transfer) { [self] outcome in
            guard expected == generation else { return }
            request = nil
            guard outcome.succeeded else {
                completion(.failure(EngineAttemptError(message: "getstream failed: \(outcome.message)")))
                return
            }
            do throws(EngineAPIError) {
                let granted = try EngineAPI.parseSession(transfer.body, engine: engine)
                session = granted
                completion(.success(granted))
            } catch {
                completion(.failure(EngineAttemptError(message: error.message)))
            }
        }
    }

    /// Reads the session's playback URL (replacing a playback in progress): each
    /// chunk goes to `onData` (false aborts); `onEnd` says why it ended.
    /// False when there is no session to play.
    @discardableResult
    func openPlayback(onData: @escaping (UnsafeRawBufferPointer) -> Bool, onEnd: @escaping (_ reason: String) -> Void) -> Bool {
        guard let session else { return false }
        if let old = playback { curl.cancel(old); playback = nil }
        generation += 1
        let expected = generation
        let transfer = CurlTransfer(
            url: session.playbackURL,
            connectTimeout: min(configuration.engineRequestTimeout, 5),
            timeout: 0,
            userAgent: configuration.engineUserAgent)
        playback = transfer
        curl.start(transfer, onData: { [unowned self] chunk in
            expected == generation ? onData(chunk) : false
        }, onComplete: { [self] outcome in
            guard expected == generation else { return }
            playback = nil
            onEnd(outcome.succeeded ? "engine ended the stream" : "playback failed: \(outcome.message)")
        })
        return true
    }

    /// Cancels the running request and playback; their answers are dropped.
    func cancel() {
        generation += 1
        if let request { curl.cancel(request) }
        if let playback { curl.cancel(playback) }
        request = nil
        playback = nil
    }

    /// Sends `command_url?method=stop` for the session, best effort, bounded in
    /// time; `server.pendingStops` counts it while in flight. Forgets the session.
    func stop(countedBy server: RelayServer, logger: Logger) {
        guard let session else { return }
        self.session = nil
        guard !session.commandURL.isEmpty else { return }
        let transfer = CurlTransfer(
            url: EngineAPI.stopURL(commandURL: session.commandURL),
            connectTimeout: 2, timeout: min(configuration.engineRequestTimeout, 5),
            userAgent: configuration.engineUserAgent)
        server.pendingStops.add(1, ordering: .relaxed)
        curl.start(transfer) { outcome in
            server.pendingStops.subtract(1, ordering: .relaxed)
            if !outcome.succeeded {
                logger.warning("engine did not confirm stop", metadata: ["relay.reason": "\(outcome.message)"])
            }
        }
    }
}

/// Why an engine request of a hub failed, in one line.
struct EngineAttemptError: Error {
    let message: String
}
