import Foundation
import Logging
import ProxyProtocol
import Locking
import Synchronization

/// One HTTP connection on the stream port: a request head, then either a short
/// response or a player streamed from its hub's history with `sendfile`.
///
/// Loop-confined to its worker, except the atomics and `info`, which status
/// pages read. Errors stay here: a failed write closes this connection only.
final class ClientConnection: @unchecked Sendable {
    private enum State {
        case readingRequest
        /// A player whose hub has no stream yet; the head is not sent.
        case waitingForHub(Subscription)
        /// A player being streamed (head first, then history bytes).
        case streaming(Subscription)
        /// An HLS playlist asked for while its hub has no segment yet, re-checked until the loop time `until`.
        /// `channel` set for a channel's playlist.
        case waitingForSegments(Hub, channel: String?, until: Double)
        /// An HLS segment: its head, then the history up to `end`; the connection closes after it.
        case sendingSegment(Hub, end: UInt64)
        /// A channel player with no source to play (all failed, or the switch
        /// limit holds it): the head is sent, null packets keep it connected.
        case betweenSources
        /// A fixed response is being written; the connection closes after it.
        case responding
        case closed
    }

    let fd: Int32
    unowned let worker: Worker
    private var state: State = .readingRequest
    private var parser: HTTPRequestParser
    private var io: IOWatcher!
    /// One timer, armed for one meaning at a time, which the state tells apart:
    /// the request-head deadline (reading), the early head (waiting for the hub),
    /// the lag check of a player blocked on a full socket (streaming), the next
    /// look for a first HLS segment and the time limit of a segment's transfer.
    private var deadline: TimerWatcher!
    /// Head or complete response still to write, and how much of it is written.
    private var outgoing: [UInt8] = []
    private var outgoingSent = 0
    /// Next history offset to send.
    private var readOffset: UInt64 = 0
    private var blockedOnWrite = false
    /// Set when the player must jump to a join point; applied at the next packet
    /// boundary, because `sendfile` may have stopped inside a packet.
    private var skipPending = false
    private var skipTimes: [Double] = []
    /// Loop time the connection was accepted, for time to first byte.
    private var acceptedAt: Double = 0
    /// Until the first bytes show whether a PROXY header comes first. Checked
    /// with the flag off too, so such a header is refused rather than parsed as HTTP
    /// (the v2 signature starts with CRLFs a lenient HTTP parser would skip).
    private var awaitingProxyHeader = true
    /// A PROXY header split over several reads, kept until it is complete.
    private var proxyBytes: [UInt8] = []
    /// Set for a player of `/ace/channel/{id}`: which source it plays and when it moves on.
    private var channel: ChannelPlayback?
    /// A channel player's change of source (nil: to none), carried out at the
    /// next packet boundary of the current one.
    private var pendingMove: ContentKey??
    /// A channel player moved to a new hub and starts at its next join point
    /// with the PCR discontinuity marked (`DiscontinuityPatcher`).
    private var splicePending = false

    // Read by status pages on any thread.
    let info: Locked<ClientInfo>
    let bytesSent = Atomic<UInt64>(0)
    let offset = Atomic<UInt64>(0)

    private var configuration: RelayConfiguration { worker.server.configuration }
    /// Counts of this player: its hub's and its worker's.
    private func counts(_ hub: Hub) -> CounterScope { CounterScope(hub: hub.counters, worker: worker.counters) }

    init(fd: Int32, worker: Worker) {
        self.fd = fd
        self.worker = worker
        parser = HTTPRequestParser(limit: worker.server.configuration.requestHeadLimit)
        info = Locked(ClientInfo(address: peerAddress(of: fd)))
        skipTimes.reserveCapacity(8)
    }

    /// Starts reading the request, under the request time limit.
    func begin() {
        acceptedAt = worker.loop.now
        io = IOWatcher(loop: worker.loop, fd: fd, events: IOWatcher.read) { [unowned self] revents in
            if revents & IOWatcher.read != 0 { readable() }
            if revents & IOWatcher.write != 0, !isClosed { writable() }
        }
        deadline = TimerWatcher(loop: worker.loop) { [unowned self] in deadlinePassed() }
        io.start()
        deadline.schedule(after: configuration.requestTimeout)
    }

    // MARK: Events

    private func readable() {
        let n: Int?
        do {
            n = try Syscall.read(fd, worker.readBuffer)
        } catch {
            close()
            return
        }
        guard let n else { return }
        guard n > 0 else {
            close()
            return
        }
        guard case .readingRequest = state else { return }  // players send nothing after the head: ignore it
        let chunk = UnsafeRawBufferPointer(rebasing: worker.readBuffer[0..<n])
        if awaitingProxyHeader {
            takeProxyHeader(chunk)
        } else {
            parseRequest(chunk)
        }
    }

    /// The start of the connection: a PROXY header (HAProxy's `send-proxy`),
    /// taken when `--proxy-protocol` is on and refused when it is off, or the
    /// request itself (a health check or a player reaching the node directly).
    private func takeProxyHeader(_ chunk: UnsafeRawBufferPointer) {
        let result: ProxyParseResult
        if proxyBytes.isEmpty {
            result = ProxyProtocolParser.parse(chunk)
        } else {
            proxyBytes.append(contentsOf: chunk)
            result = ProxyProtocolParser.parse(proxyBytes)
        }
        // The rest of the request after `consumed` bytes of header.
        func rest(after consumed: Int) -> [UInt8] {
            proxyBytes.isEmpty ? Array(chunk[consumed...]) : Array(proxyBytes[consumed...])
        }
        switch result {
        case .needMoreData:
            // Still under the request-head deadline; the parser bounds the header's length.
            if proxyBytes.isEmpty { proxyBytes = Array(chunk) }
        case .notProxy:
            awaitingProxyHeader = false
            let bytes = rest(after: 0)
            proxyBytes = []
            bytes.withUnsafeBytes { parseRequest($0) }
        case .invalid(let why):
            respond(HTTPResponse.error(status: 400, code: "bad_proxy_header", message: "malformed PROXY protocol header: \(why)"))
        case .header(let header, let consumed):
            guard configuration.proxyProtocol else {
                respond(HTTPResponse.error(status: 400, code: "proxy_protocol_off",
                                           message: "a PROXY protocol header, but this relay runs without --proxy-protocol"))
                return
            }
            awaitingProxyHeader = false
            let bytes = rest(after: consumed)
            proxyBytes = []
            if case .proxied(let source, _) = header {
                let player = "\(source.host):\(source.port)"
                let proxy = info.withLock { info -> String in
                    defer { info.address = player }
                    return info.address
                }
                worker.logger.debug("proxied connection", metadata: ["relay.client": "\(player)", "relay.proxy": "\(proxy)"])
            }
            // `.local`: the proxy's own connection (a health check); its address stands.
            if !bytes.isEmpty { bytes.withUnsafeBytes { parseRequest($0) } }
        }
    }

    private func parseRequest(_ bytes: UnsafeRawBufferPointer) {
        do throws(HTTPRequestError) {
            if let head = try parser.append(bytes) {
                route(head)
            }
        } catch {
            switch error {
            case .headTooLarge:
                respond(HTTPResponse.error(status: 431, code: "head_too_large", message: "request head is larger than \(parser.limit) bytes"))
            case .malformed(let why):
                respond(HTTPResponse.error(status: 400, code: "bad_request", message: "malformed request: \(why)"))
            }
        }
    }

    private func writable() {
        blockedOnWrite = false
        deadline.cancel()
        io.watch(IOWatcher.read)
        switch state {
        case .responding: flushResponse()
        default: pump()
        }
    }

    private func deadlinePassed() {
        switch state {
        case .readingRequest: requestHeadTimedOut()
        case .waitingForHub(let subscription): earlyHeadDue(subscription)
        case .streaming(let subscription): blockedLagCheckDue(subscription)
        case .waitingForSegments(let hub, let channel, let until): lookForFirstSegment(hub, channel: channel, until: until)
        case .sendingSegment: close()  // a player that stopped reading a segment holds nothing else
        case .betweenSources, .responding, .closed: break
        }
    }

    private func requestHeadTimedOut() {
        respond(HTTPResponse.error(status: 408, code: "request_timeout", message: "request head not received within \(Int(configuration.requestTimeout)) s"))
    }

    /// The engine is slow (provisioning, prebuffering): answer now and keep the
    /// player connected with null packets rather than let it time out.
    private func earlyHeadDue(_ subscription: Subscription) {
        startStreaming(subscription)
    }

    /// A player that stopped reading is never pumped, so while its socket stays
    /// full its lag is enforced here: each period behind the lag limit counts as
    /// another skip, and it is dropped after `clientSkipLimit` periods.
    private func blockedLagCheckDue(_ subscription: Subscription) {
        guard blockedOnWrite else { return }
        guard enforceLag(subscription.hub) else { return }
        armBlockedLagCheck()
    }

    private func armBlockedLagCheck() { deadline.schedule(after: configuration.clientMaxLagSeconds / 2) }

    // MARK: Routing

    private func route(_ head: HTTPRequestHead) {
        deadline.cancel()
        info.withLock { $0.userAgent = head.header("user-agent") }
        switch StreamRouter.standard.route(head) {
        case .play(let key):
            join(key)
        case .hlsPlaylist(let key, let includeBody):
            if !includeBody {
                carryOut(hls.playlistProbed(key))
            } else if let refusal = admissionRefusal(key), !(worker.server.isAccepting && hls.isWatching(key)) {
                respond(refusal)
            } else {
                carryOut(hls.playlistRequested(key))
            }
        case .hlsSegment(let key, let sequence, let includeBody):
            carryOut(hls.segmentRequested(key, sequence: sequence, includeBody: includeBody))
        case .hlsChannelPlaylist(let id, let includeBody):
            if !includeBody {
                carryOut(hls.channelPlaylistProbed(id))
            } else if let refusal = relayRefusal(), !(worker.server.isAccepting && hls.isWatchingChannel(id)) {
                respond(refusal)
            } else {
                carryOut(hls.channelPlaylistRequested(id))
            }
        case .playChannel(let id, let includeBody):
            joinChannel(id, includeBody: includeBody)
        case .probeStream:
            respond(HTTPResponse.streamHead)
        case .status(let includeBody):
            // Players' addresses and user agents are personal data: with a key set, only its holder sees them.
            let showsPlayers = configuration.statusKey?.admits(head) ?? true
            respond(HTTPResponse.make(status: 200, contentType: "application/json", body: worker.server.statusJSON(showingPlayers: showsPlayers),
                                      extraHeaders: [("Cache-Control", "no-store")], includeBody: includeBody))
        case .health(let includeBody):
            let server = worker.server
            // A draining node must look down to the load balancer at once, while its players keep streaming.
            let serving = server.isAccepting && !server.isDraining
            respond(HTTPResponse.make(status: serving ? 200 : 503, contentType: "application/json",
                                      body: Array((serving ? #"{"status":"ok"}"# : #"{"status":"draining"}"#).utf8),
                                      extraHeaders: [("Cache-Control", "no-store")], includeBody: includeBody))
        case .refuse(let status, let code, let message, let includeBody, let allow):
            respond(HTTPResponse.error(status: status, code: code, message: message,
                                       extraHeaders: allow ? [("Allow", "GET, HEAD")] : [], includeBody: includeBody))
        }
    }

    /// Why the relay takes no new player at all now (stopping, draining), as the response; nil to let it in.
    private func relayRefusal() -> [UInt8]? {
        let server = worker.server
        guard server.isAccepting else {
            return HTTPResponse.error(status: 503, code: "relay_stopping", message: "the relay is shutting down", retryAfter: 5)
        }
        guard !server.isDraining else {
            // Retry-After lets a player come back through the load balancer, which now sends it to another node.
            return HTTPResponse.error(status: 503, code: "relay_draining", message: "this relay is draining; retry", retryAfter: 2)
        }
        return nil
    }

    /// Why a new player of `key` (TS or HLS) is turned away, as the response; nil to let it in.
    private func admissionRefusal(_ key: ContentKey) -> [UInt8]? {
        if let refusal = relayRefusal() { return refusal }
        if let refusal = worker.server.contentGate?.refusal(for: key) {
            return HTTPResponse.error(status: refusal.status, code: refusal.code, message: refusal.message)
        }
        return nil
    }

    /// False (after answering 503) when the relay takes no new players.
    private func admitsPlayers() -> Bool {
        guard let refusal = relayRefusal() else { return true }
        respond(refusal)
        return false
    }

    private func join(_ key: ContentKey) {
        if let refusal = admissionRefusal(key) {
            respond(refusal)
            return
        }
        waitForHub(key)
    }

    /// Attaches to `key`'s hub and waits for its stream before sending the head.
    private func waitForHub(_ key: ContentKey) {
        guard let subscription = attach(key) else { return }
        state = .waitingForHub(subscription)
        guard !isClosed else { return }
        deadline.schedule(after: configuration.earlyHeadAfter)
        pump()
    }

    /// Counts this connection as a player of `key`'s hub, creating the hub if none is open;
    /// nil (after answering 503, or closing a player that has its head) when no buffer can be made.
    private func attach(_ key: ContentKey) -> Subscription? {
        let server = worker.server
        let attached: (hub: Hub, created: Bool)
        do {
            attached = try server.registry.attach(key, from: playerHost) { try Hub(key: key, owner: worker) }
        } catch let quota as AddressQuotaExceeded {
            refuseAttach(HTTPResponse.error(status: 429, code: "too_many_contents",
                                            message: "this address has \(quota.limit) streams open already (--max-contents-per-address); close one or retry later",
                                            retryAfter: Int(configuration.gracePeriod.rounded(.up)) + 1))
            return nil
        } catch let full as HistoryBudgetExhausted {
            refuseAttach(HTTPResponse.error(status: 503, code: "history_budget_full", message: full.message, retryAfter: 10))
            return nil
        } catch {
            refuseAttach(HTTPResponse.error(status: 503, code: "relay_error", message: "cannot open a stream buffer: \(error)", retryAfter: 10))
            return nil
        }
        let hub = attached.hub
        info.withLock { $0.content = key }
        let subscription = worker.subscription(to: hub)
        subscription.add(self)
        counts(hub).add(.playersServed)
        server.events.publish(.playerJoined(hub.id))
        if attached.created { hub.start() }
        channel?.attached(hub)
        return subscription
    }

    /// Answers a refused attach; a channel player moving between sources has its
    /// head already, so it can only be closed.
    private func refuseAttach(_ response: [UInt8]) {
        if case .betweenSources = state { close() } else { respond(response) }
    }

    /// `/ace/channel/{id}`: the channel's first working source, moved to the next
    /// one on the same connection when it fails. HEAD answers as a stream would.
    private func joinChannel(_ id: String, includeBody: Bool) {
        guard let directory = worker.server.channels, let sources = directory.sources(ofChannel: id) else {
            respond(HTTPResponse.error(status: 404, code: "unknown_channel", message: "no channel with id \(id)", includeBody: includeBody))
            return
        }
        guard includeBody else {
            respond(sources.isEmpty
                ? HTTPResponse.error(status: 503, code: "no_working_source", message: "every source of channel \(id) failed", retryAfter: 30, includeBody: false)
                : HTTPResponse.streamHead)
            return
        }
        guard admitsPlayers() else { return }
        let playback = ChannelPlayback(channelID: id, connection: self, worker: worker)
        channel = playback
        info.withLock { $0.channel = id }
        guard let first = playback.begin() else {
            respond(HTTPResponse.error(status: 503, code: "no_working_source",
                                       message: "every source of channel \(id) failed; try again later", retryAfter: 30))
            return
        }
        waitForHub(first)
    }

    /// The player's host without its port (the proxied one behind `--proxy-protocol`),
    /// which `--max-contents-per-address` counts by.
    private var playerHost: String {
        let address = info.withLock { $0.address }
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }

    // MARK: Streaming

    /// Moves this player forward: called when its hub published bytes or changed state,
    /// and when its socket drains.
    func pump() {
        switch state {
        case .waitingForHub(let subscription):
            switch subscription.hub.phase {
            case .starting: return
            case .streaming: startStreaming(subscription)
            case .failed, .closed:
                if let channel {
                    channel.sourceEnded()
                    return
                }
                let failure = subscription.hub.failure
                respond(HTTPResponse.error(
                    status: failure?.status ?? 503, code: failure?.code ?? "stream_closed",
                    message: failure?.message ?? "the stream closed before it started", retryAfter: failure?.retryAfter ?? 5))
            }
        case .streaming(let subscription):
            send(subscription)
        case .sendingSegment(let hub, let end):
            sendSegment(hub, end: end)
        case .betweenSources:
            do { _ = try writeOutgoing() } catch { close() }
        case .readingRequest, .waitingForSegments, .responding, .closed:
            return
        }
    }

    // MARK: Channel playback

    /// The hub a channel player is settled on: nil while a move is pending or it plays none.
    var settledHub: Hub? {
        guard pendingMove == nil else { return nil }
        switch state {
        case .waitingForHub(let subscription), .streaming(let subscription): return subscription.hub
        case .readingRequest, .betweenSources, .waitingForSegments, .sendingSegment, .responding, .closed: return nil
        }
    }

    /// True while a channel player waits for its new hub's first join point (or plays no source).
    var awaitsJoinPoint: Bool {
        if case .streaming = state { return splicePending && pendingMove == nil }
        if case .betweenSources = state { return true }
        return false
    }

    /// Moves a channel player to `key`'s hub (nil: to none, with keepalives),
    /// after the packet in flight; a player without its head yet simply waits
    /// for the new hub, or is told no source works.
    func move(to key: ContentKey?) {
        switch state {
        case .waitingForHub:
            leaveHub()
            // Attached to nothing now; the next state is set by what follows, and a
            // second `leaveHub` (a refusal's) must not detach the old hub again.
            state = .readingRequest
            deadline.cancel()
            if let key {
                waitForHub(key)
            } else {
                respond(HTTPResponse.error(status: 503, code: "no_working_source",
                                           message: "every source of channel \(channel?.channelID ?? "-") failed; try again later", retryAfter: 30))
            }
        case .streaming(let subscription):
            pendingMove = .some(key)
            send(subscription)
        case .betweenSources:
            completeMove(key)
        case .readingRequest, .waitingForSegments, .sendingSegment, .responding, .closed:
            return
        }
    }

    /// Leaves the current hub (on a packet boundary) for `key`'s, or for none.
    private func completeMove(_ key: ContentKey?) {
        pendingMove = nil
        skipPending = false
        leaveHub()
        guard let key else {
            state = .betweenSources
            info.withLock { $0.content = nil }
            return
        }
        state = .betweenSources
        guard let subscription = attach(key) else { return }
        splicePending = true
        state = .streaming(subscription)
        send(subscription)
    }

    /// One null packet, while a channel player has nothing else to send; never inside a packet.
    func sendKeepalive() {
        guard awaitsJoinPoint, !blockedOnWrite, outgoingSent == outgoing.count else { return }
        outgoing = TSPacket.null
        outgoingSent = 0
        do { _ = try writeOutgoing() } catch { close() }
    }

    /// Starts the player on its new hub: the latest join point, with the first PCR
    /// packet of each clock marked discontinuous. The packets up to there are copied
    /// once (sendfile cannot change bytes) and written from `outgoing`; the rest
    /// follows by sendfile. False while the hub has no join point, or too few bytes after it.
    private func splice(_ hub: Hub) throws -> Bool {
        let history = hub.history
        guard let join = history.latestJoinPoint?.offset else { return false }
        let end = history.end
        let length = Int(min(end - join, UInt64(ClientConnection.spliceLimit)))
        var bytes = [UInt8](repeating: 0, count: length - length % TSPacket.size)
        let read = try bytes.withUnsafeMutableBytes { try Syscall.preadAll(history.fd, $0, at: Int(join)) }
        guard read == bytes.count else { return false }
        let outcome = bytes.withUnsafeMutableBytes { DiscontinuityPatcher.patch($0) }
        switch outcome {
        case .patched(let prefix):
            outgoing = Array(bytes[0..<prefix])
            readOffset = join + UInt64(prefix)
        case .noClock:
            outgoing = []
            readOffset = join
        case .incomplete:
            // The first PCRs follow a join point closely; with this much and none, the stream has no clock to mark.
            guard bytes.count >= ClientConnection.spliceLimit - TSPacket.size else { return false }
            worker.logger.notice("no PCR within the splice limit after a channel switch; not marked", metadata: ["relay.content": "\(hub.key)"])
            outgoing = []
            readOffset = join
        }
        outgoingSent = 0
        splicePending = false
        return true
    }

    /// Most bytes copied at a switch to find the first PCR of each clock.
    static let spliceLimit = 512 * TSPacket.size

    private func startStreaming(_ subscription: Subscription) {
        deadline.cancel()
        let hub = subscription.hub
        readOffset = joinOffset(hub)
        outgoing = HTTPResponse.streamHead
        outgoingSent = 0
        state = .streaming(subscription)
        send(subscription)
    }

    private var lagPolicy: LagPolicy {
        LagPolicy(maxLagSeconds: configuration.clientMaxLagSeconds, skipLimit: configuration.clientSkipLimit)
    }

    /// Where a player starts (or skips to).
    private func joinOffset(_ hub: Hub) -> UInt64 {
        let history = hub.history
        return lagPolicy.skipTarget(joinPoint: hub.latestJoinPoint, oldestReadable: history.oldestReadable,
                                    end: history.end, maxLag: maxLag(hub))
    }

    private func maxLag(_ hub: Hub) -> UInt64 {
        lagPolicy.maxLagBytes(bitsPerSecond: hub.bitsPerSecond, retainedBytes: hub.history.retainedBytes)
    }

    private func send(_ subscription: Subscription) {
        guard !blockedOnWrite else { return }
        let hub = subscription.hub
        if let move = pendingMove {
            do {
                if outgoingSent < outgoing.count {
                    guard try writeOutgoing() else { return }
                }
                guard try finishPartialPacket(hub.history) else { return }
            } catch {
                close()
                return
            }
            completeMove(move)
            return
        }
        switch hub.phase {
        case .failed, .closed:
            if let channel {
                channel.sourceEnded()
                return
            }
            close()
            return
        case .starting, .streaming:
            break
        }
        do {
            if outgoingSent < outgoing.count {
                guard try writeOutgoing() else { return }
            }
            if splicePending {
                guard try splice(hub) else { return }
                guard try writeOutgoing() else { return }
            }
            let history = hub.history
            if !skipPending {
                guard enforceLag(hub) else { return }
            }
            if skipPending {
                guard try finishPartialPacket(history) else { return }
                readOffset = joinOffset(hub)
                skipPending = false
            }
            let end = history.end
            guard readOffset < end else { return }
            var sent: UInt64 = 0
            defer {
                if sent > 0 {
                    if bytesSent.load(ordering: .relaxed) == 0 {
                        let wait = max(worker.loop.now - acceptedAt, 0)
                        counts(hub).add(.firstBytes)
                        counts(hub).add(.firstByteMicroseconds, UInt64(wait * 1_000_000))
                        worker.server.events.publish(.firstByte(hub.id, seconds: wait))
                    }
                    bytesSent.add(sent, ordering: .relaxed)
                    counts(hub).add(.bytesOut, sent)
                    offset.store(readOffset, ordering: .relaxed)
                }
            }
            switch try sendHistory(history, upTo: end, sent: &sent) {
            case .done: break
            case .blocked: waitForWritable()
            case .peerGone: close()
            }
        } catch {
            close()
        }
    }

    private enum HistorySendOutcome { case done, blocked, peerGone }

    /// Sends history bytes from `readOffset` up to `end` with `sendfile`, in capped
    /// calls, until done or the socket is full; adds what it sent to `sent`.
    private func sendHistory(_ history: StreamHistory, upTo end: UInt64, sent: inout UInt64) throws -> HistorySendOutcome {
        while readOffset < end {
            var fileOffset = Int(readOffset)
            let count = min(Int(end - readOffset), configuration.sendChunkBytes)
            switch try Syscall.sendfile(socket: fd, file: history.fd, offset: &fileOffset, count: count) {
            case .wrote(let n):
                guard n > 0 else { return .peerGone }
                readOffset += UInt64(n)
                sent += UInt64(n)
            case .wouldBlock:
                return .blocked
            }
        }
        return .done
    }

    // MARK: HLS

    private var hls: HLSResponder {
        let info = info.withLock { $0 }
        return HLSResponder(worker: worker, viewer: HLSAudience.viewer(address: info.address, userAgent: info.userAgent), address: playerHost)
    }

    /// A segment's transfer may take this long; a player that stalls longer is closed.
    static let segmentSendLimit: Double = 30
    /// How often a playlist waiting for its hub's first segment looks again.
    static let firstSegmentRecheck: Double = 0.2

    private func carryOut(_ answer: HLSResponder.Answer) {
        switch answer {
        case .respond(let bytes):
            respond(bytes)
        case .waitForSegments(let hub):
            state = .waitingForSegments(hub, channel: nil, until: worker.loop.now + configuration.hlsPlaylistWait)
            deadline.schedule(after: ClientConnection.firstSegmentRecheck)
        case .waitForChannelSegments(let hub, let channel):
            state = .waitingForSegments(hub, channel: channel, until: worker.loop.now + configuration.hlsPlaylistWait)
            deadline.schedule(after: ClientConnection.firstSegmentRecheck)
        case .segment(let head, let hub, let range):
            deadline.cancel()
            outgoing = head
            outgoingSent = 0
            readOffset = range.lowerBound
            state = .sendingSegment(hub, end: range.upperBound)
            deadline.schedule(after: ClientConnection.segmentSendLimit)
            sendSegment(hub, end: range.upperBound)
        }
    }

    private func lookForFirstSegment(_ hub: Hub, channel: String?, until: Double) {
        let responder = hls
        if let answer = channel.map({ responder.channelPlaylist($0, of: hub) }) ?? responder.playlist(of: hub) {
            carryOut(answer)
        } else if worker.loop.now >= until {
            carryOut(responder.noSegmentYet(hub))
        } else {
            deadline.schedule(after: ClientConnection.firstSegmentRecheck)
        }
    }

    /// Sends a segment's head and bytes, then closes. The bytes must still be in the
    /// history: a transfer overtaken by its trimming is cut off rather than sent holes.
    private func sendSegment(_ hub: Hub, end: UInt64) {
        guard !blockedOnWrite else { return }
        var sent: UInt64 = 0
        defer {
            if sent > 0 {
                bytesSent.add(sent, ordering: .relaxed)
                counts(hub).add(.bytesOut, sent)
            }
        }
        do {
            if outgoingSent < outgoing.count {
                guard try writeOutgoing() else { return }
            }
            let history = hub.history
            guard readOffset >= history.oldestReadable || readOffset == end else {
                close()
                return
            }
            switch try sendHistory(history, upTo: end, sent: &sent) {
            case .done: close()
            case .blocked: waitForWritable()
            case .peerGone: close()
            }
        } catch {
            close()
        }
    }

    /// Applies the lag policy: marks a lagging player to skip forward to a join
    /// point, or drops it when it keeps lagging. Returns false when dropped.
    private func enforceLag(_ hub: Hub) -> Bool {
        let history = hub.history
        let policy = lagPolicy
        let (oldest, end, limit) = (history.oldestReadable, history.end, maxLag(hub))
        // Most sends are not behind: settle that before touching the skip history.
        guard policy.isLagging(readOffset: readOffset, oldestReadable: oldest, end: end, maxLag: limit) else { return true }
        let now = worker.loop.now
        skipTimes.removeAll { now - $0 > configuration.skipWindow }
        switch policy.decide(readOffset: readOffset, oldestReadable: oldest, end: end, maxLag: limit, recentSkips: skipTimes.count) {
        case .keep:
            return true
        case .skip:
            break
        case .drop:
            counts(hub).add(.drops)
            worker.logger.info("dropping a player that keeps falling behind", metadata: ["relay.content": "\(hub.key)"])
            worker.server.events.publish(.playerDropped(hub.id))
            close()
            return false
        }
        skipTimes.append(now)
        counts(hub).add(.skips)
        worker.server.events.publish(.playerSkipped(hub.id))
        skipPending = true
        return true
    }

    /// Sends the rest of a packet `sendfile` stopped inside; true once on a boundary.
    private func finishPartialPacket(_ history: StreamHistory) throws -> Bool {
        while readOffset % UInt64(TSPacket.size) != 0 {
            var fileOffset = Int(readOffset)
            let count = TSPacket.size - Int(readOffset % UInt64(TSPacket.size))
            switch try Syscall.sendfile(socket: fd, file: history.fd, offset: &fileOffset, count: count) {
            case .wrote(let n):
                guard n > 0 else { close(); return false }
                readOffset += UInt64(n)
            case .wouldBlock:
                waitForWritable()
                return false
            }
        }
        return true
    }

    /// Writes what is left of `outgoing`; true when all of it is written.
    private func writeOutgoing() throws -> Bool {
        while outgoingSent < outgoing.count {
            let progress = try outgoing.withUnsafeBytes { bytes in
                try Syscall.write(fd, UnsafeRawBufferPointer(rebasing: bytes[outgoingSent...]))
            }
            switch progress {
            case .wrote(let n): outgoingSent += n
            case .wouldBlock:
                waitForWritable()
                return false
            }
        }
        return true
    }

    private func waitForWritable() {
        blockedOnWrite = true
        io.watch(IOWatcher.read | IOWatcher.write)
        if case .streaming = state, !deadline.isActive { armBlockedLagCheck() }
    }

    // MARK: Fixed responses

    private func respond(_ bytes: [UInt8]) {
        leaveHub()
        deadline.cancel()
        outgoing = bytes
        outgoingSent = 0
        state = .responding
        flushResponse()
    }

    private func flushResponse() {
        do {
            if try writeOutgoing() { close() }
        } catch {
            close()
        }
    }

    // MARK: Closing

    private var isClosed: Bool { if case .closed = state { return true } else { return false } }

    private func leaveHub() {
        switch state {
        case .waitingForHub(let subscription), .streaming(let subscription):
            subscription.remove(self)
            worker.server.registry.detach(subscription.hub)
            worker.server.events.publish(.playerLeft(subscription.hub.id))
        case .readingRequest, .waitingForSegments, .sendingSegment, .betweenSources, .responding, .closed:
            break
        }
    }

    /// Closes the socket and leaves the hub. Safe to call more than once.
    func close() {
        guard !isClosed else { return }
        leaveHub()
        channel?.finish()
        state = .closed
        io?.stop()
        deadline?.cancel()
        Syscall.close(fd)
        worker.connectionClosed(self)
    }

    // MARK: Status

    /// True once the connection asked for a stream.
    var isPlayer: Bool { info.withLock { $0.content != nil || $0.channel != nil } }

    func snapshot() -> ClientSnapshot? {
        let info = info.withLock { $0 }
        guard info.content != nil || info.channel != nil else { return nil }
        var snapshot = ClientSnapshot(
            contentKey: info.content?.value ?? "", worker: worker.index, address: info.address, userAgent: info.userAgent,
            connectedAt: info.connectedAt, bytesSent: bytesSent.load(ordering: .relaxed),
            offset: offset.load(ordering: .relaxed))
        snapshot.channel = info.channel
        return snapshot
    }
}

/// What status pages show of a connection, guarded together.
struct ClientInfo: Sendable {
    var address: String
    var userAgent: String?
    var content: ContentKey?
    /// The channel a `/ace/channel/{id}` player asked for.
    var channel: String?
    var connectedAt = Date()
}
