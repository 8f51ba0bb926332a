import Foundation
import StreamFacts
import Locking

/// A hub's ingest: engine bytes through the aligner (whole packets only), the
/// inspector (join points, continuity, bitrate) and the stream-facts collector
/// (codecs, picture, audio) into the history, and the batched wake-up of every worker's subscription when enough is published.
///
/// The writer side is loop-confined to the hub's owner; the subscriber list is
/// shared with the workers that add and remove their subscriptions.
final class IngestPipeline {
    let history: StreamHistory
    let inspector = TSInspector()
    /// Reads the stream's facts from the engine's packets until it has them all, then rests.
    let factReader = StreamFactsCollector()
    /// Cuts the history into HLS segments at its join points.
    let segmenter: HLSSegmenter
    private let aligner = TSAligner()
    /// Offset of the next byte appended.
    private(set) var writeOffset: UInt64 = 0
    /// Up to where subscribers were last woken.
    private var notifiedOffset: UInt64 = 0
    private let subscribers = Locked<[Subscription]>([])
    private var flushTimer: TimerWatcher!
    private let sendBlockBytes: UInt64
    private let flushInterval: Double

    /// Packets after which a stream still missing some facts (no audio, say) stops being read for them.
    static let factsPacketLimit = 200_000

    init(history: StreamHistory, loop: EventLoop, configuration: RelayConfiguration) {
        self.history = history
        sendBlockBytes = UInt64(configuration.sendBlockBytes)
        flushInterval = configuration.sendFlushInterval
        segmenter = HLSSegmenter(index: HLSSegmentIndex(firstSequence: UInt64(Date().timeIntervalSince1970)),
                                 targetSeconds: configuration.hlsSegmentSeconds)
        flushTimer = TimerWatcher(loop: loop) { [unowned self] in self.notifySubscribers() }
        let inspector = inspector, segmenter = segmenter
        inspector.joinPointFound = { [unowned inspector, unowned loop] (offset: UInt64, keyFrame: Bool) in
            let clock: Double? = inspector.hasStreamClock ? inspector.streamSeconds : nil
            let point = JoinPoint(offset: offset, pcr: inspector.lastPCR, time: loop.now, streamTime: clock, keyFrame: keyFrame)
            history.recordJoinPoint(point)
            segmenter.joinPointFound(point)
        }
        inspector.timelineBreakFound = { [unowned segmenter] (offset: UInt64) in segmenter.timelineBroke(at: offset) }
    }

    /// Bytes the aligner threw away (garbage between packets).
    var discardedBytes: UInt64 { aligner.discardedBytes }

    func addSubscriber(_ subscription: Subscription) { subscribers.withLock { $0.append(subscription) } }
    func removeSubscriber(_ subscription: Subscription) {
        subscribers.withLock { list in list.removeAll { $0 === subscription } }
    }

    /// Wakes every subscription now (new bytes, or the hub changed state).
    func notifySubscribers() {
        notifiedOffset = writeOffset
        let list = subscribers.withLock { $0 }
        for subscription in list { subscription.notify() }
    }

    /// Takes one chunk of engine bytes; returns the stream packets it added.
    func ingest(_ chunk: UnsafeRawBufferPointer) throws -> UInt64 {
        let before = writeOffset
        try aligner.feed(chunk) { run in try append(run) }
        guard writeOffset > before else { return 0 }
        publish()
        return (writeOffset - before) / UInt64(TSPacket.size)
    }

    /// The engine response ended: what the aligner holds goes in as whole packets.
    func finish() {
        try? aligner.finish { run in try append(run) }
        publish()
    }

    /// A null packet into the history: players stay connected while the engine is quiet.
    /// Not inspected: the engine's share of null packets is about what the engine sent.
    func appendKeepalive() {
        do {
            try TSPacket.null.withUnsafeBytes { packet in
                try history.append(packet, at: writeOffset)
                writeOffset += UInt64(packet.count)
            }
        } catch {
            return
        }
        history.publish(upTo: writeOffset)
        notifySubscribers()
    }

    /// History to keep: `seconds` of the measured bitrate, within `maxBytes`.
    func retain(seconds: Double, maxBytes: UInt64) {
        let rate = inspector.bitsPerSecond > 0 ? inspector.bitsPerSecond : 8_000_000
        let wanted = UInt64(seconds * Double(rate) / 8)
        history.retain(wanted: min(max(wanted, 8 << 20), maxBytes))
    }

    func stop() { flushTimer.cancel() }

    private func append(_ run: UnsafeRawBufferPointer) throws {
        inspector.inspect(run, at: writeOffset)
        // The collector reads the same run in place; once complete it is not called again.
        if !factReader.isComplete, factReader.packetsSeen < IngestPipeline.factsPacketLimit { factReader.consume(run) }
        try history.append(run, at: writeOffset)
        writeOffset += UInt64(run.count)
    }

    /// Publishes, and wakes subscribers once a send block is ready or after the flush interval.
    private func publish() {
        history.publish(upTo: writeOffset)
        if writeOffset - notifiedOffset >= sendBlockBytes {
            flushTimer.cancel()
            notifySubscribers()
        } else if writeOffset > notifiedOffset, !flushTimer.isActive {
            flushTimer.schedule(after: flushInterval)
        }
    }
}
