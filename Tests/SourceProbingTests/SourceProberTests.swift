import Channels
import EngineSimulator
import Foundation
import RelayCore
import StreamFacts
import Synchronization
import Testing

/// The prober against the engine simulator serving several contents: real
/// media made by ffmpeg, real sockets, the relay's own hubs.
@Suite(.serialized) struct SourceProberTests {
    @Test(.enabled(if: MediaFixture.toolsInstalled))
    func everySourceIsMeasuredWithItsRealFactsOrTheRightFailureAndProbesNeverExceedTheirLimit() async throws {
        let media = try TestDirectory("probe-media")
        let directory = media.path
        let hd = try MediaFixture(directory: directory, name: "hd", size: "1280x720", rate: 25, channels: 2)
        let sd = try MediaFixture(directory: directory, name: "sd", size: "640x360", rate: 30, channels: 1)
        let (hdID, sdID, refusedID, stalledID, loopingID) = (ProbeRig.contentID(1), ProbeRig.contentID(2), ProbeRig.contentID(3),
                                                               ProbeRig.contentID(4), ProbeRig.contentID(5))
        let rig = try ProbeRig(loopDetection: true, simulator: { simulator in
            simulator.mediaByContent = [hdID: .file(hd.path), sdID: .file(sd.path)]
            simulator.statsByContent = [hdID: SimulatorSwarm(peers: 12, speedDownKBps: 900), sdID: SimulatorSwarm(peers: 3, speedDownKBps: 150)]
        })
        defer { rig.stop() }
        rig.simulator.setFault(.loadError, for: refusedID)
        rig.simulator.setFault(.frozenLiveLast, for: loopingID)
        rig.startControlPlaneLoop()
        // The stalled source flows, then goes quiet for good once its hub is live.
        let stallArmed = Atomic<Bool>(false)
        let watcher = rig.relay.events.subscribe("stall-arm") { event in
            if case .hubLive(let hub, _) = event, hub.content.value == stalledID, !stallArmed.exchange(true, ordering: .relaxed) {
                rig.simulator.setFault(.stall(seconds: 600), for: stalledID)
            }
        }
        defer { watcher.cancel() }
        // Concurrent engine sessions, as the simulator counts them.
        let peakSessions = Atomic<Int>(0)
        let sampling = Atomic<Bool>(true)
        let sampler = Thread {
            while sampling.load(ordering: .relaxed) {
                let active = rig.simulator.totalCounters.activeSessions
                if active > peakSessions.load(ordering: .relaxed) { peakSessions.store(active, ordering: .relaxed) }
                usleep(10_000)
            }
        }
        sampler.start()
        defer { sampling.store(false, ordering: .relaxed) }

        let all = [hdID, sdID, refusedID, stalledID, loopingID]
        rig.catalog.set(all)
        rig.sink.catalog = rig.catalog
        let prober = SourceProber(relay: rig.relay, catalog: rig.catalog, sink: rig.sink, stats: rig.collector, loops: rig.loops,
                                  settings: ProbeSettings(probeSeconds: 3, interval: 3_600, concurrency: 2, startTimeout: 5,
                                                          roundInterval: 0.2, startSpread: 0, stalledAfter: 1.5),
                                  logger: ProbeRig.logger)
        let running = Task { await prober.run() }
        defer { running.cancel() }
        #expect(await eventually(timeout: 60) { Set(rig.sink.all.map { $0.0 }) == Set(all) }, "every source measured: \(rig.sink.all.map { $0.0 })")

        for (id, media, peers) in [(hdID, hd, 12), (sdID, sd, 3)] {
            let measured = try #require(rig.sink.latest(id))
            #expect(measured.failure == nil, "\(id): \(String(describing: measured.failure))")
            #expect(measured.facts.width == media.width)
            #expect(measured.facts.height == media.height)
            #expect(abs((measured.facts.fps ?? 0) - media.fps) < 0.01, "fps \(String(describing: measured.facts.fps)) vs \(media.fps)")
            #expect(measured.facts.videoCodec?.name == media.videoCodec)
            #expect(measured.facts.audioCodec?.name == media.audioCodec)
            #expect(measured.facts.audioChannels == media.channels)
            #expect(measured.timeToFirstByte.map { $0 >= 0 && $0 < 5 } == true)
            #expect((measured.bitrateKbps ?? 0) > 0)
            #expect(measured.continuityErrors == 0)
            #expect(measured.peers == peers)
            #expect(measured.speedDownKBps == (peers == 12 ? 900 : 150))
            #expect(measured.liveposAdvancing == true)
            #expect(measured.nullPacketShare < 0.5)
        }
        #expect(rig.sink.latest(refusedID)?.failure == .refused)
        #expect(rig.sink.latest(stalledID)?.failure == .stalled)
        #expect(rig.sink.latest(loopingID)?.failure == .looping)
        #expect(peakSessions.load(ordering: .relaxed) <= 2, "engine sessions at once: \(peakSessions.load(ordering: .relaxed))")
        #expect(peakSessions.load(ordering: .relaxed) >= 1)
        #expect(prober.peakConcurrency <= 2)
    }

    @Test func aPlayerJoiningAProbedContentAddsNoEngineSession() async throws {
        let rig = try ProbeRig()
        defer { rig.stop() }
        let id = ProbeRig.contentID(10)
        let probe = await rig.relay.openProbe(ProbeRig.key(10))
        let hub = try #require(probe.hubID)
        #expect(await rig.waitForEvent(timeout: 10) { if case .hubLive(hub, _) = $0 { true } else { false } })
        let player = try Player(port: rig.relay.port, contentID: id)
        let read = player.read(bodyBytes: 64 * 1024)
        #expect(read.status == 200)
        #expect(read.body >= 64 * 1024)
        probe.release()
        // The player keeps the hub: still streaming, still one session.
        #expect(player.read(bodyBytes: 64 * 1024).body >= 64 * 1024)
        let counters = rig.simulator.counters(for: id)
        #expect(counters.getstreamRequests == 1)
        #expect(counters.sessionsStarted == 1)
        #expect(counters.stops == 0)
    }

    @Test func aProbeOnlyHubClosesAsSoonAsTheProbeEnds() async throws {
        // A 30 s grace period: a close within seconds can only be the probe's.
        let rig = try ProbeRig { $0.gracePeriod = 30 }
        defer { rig.stop() }
        let id = ProbeRig.contentID(11)
        let probe = await rig.relay.openProbe(ProbeRig.key(11))
        let hub = try #require(probe.hubID)
        #expect(await rig.waitForEvent(timeout: 10) { if case .hubLive(hub, _) = $0 { true } else { false } })
        let released = Date()
        probe.release()
        #expect(await rig.waitForEvent(timeout: 5) { if case .hubClosed(hub, .idle) = $0 { true } else { false } })
        #expect(await eventually(timeout: 5) { rig.simulator.counters(for: id).stops == 1 }, "the engine got stop")
        #expect(Date().timeIntervalSince(released) < 5)
    }

    @Test func aProbeNeverMakesAPlayerGet503WhenAnEngineHasRoomForThePlayer() async throws {
        // One engine with two slots.
        let rig = try ProbeRig(maxStreamsPerEngine: 2)
        defer { rig.stop() }
        let probe = await rig.relay.openProbe(ProbeRig.key(20))
        let probeHub = try #require(probe.hubID)
        #expect(await rig.waitForEvent(timeout: 10) { if case .hubLive(probeHub, _) = $0 { true } else { false } })
        // A second probe would take the slot kept for players: refused at once, no engine session.
        let second = await rig.relay.openProbe(ProbeRig.key(21))
        let secondHub = try #require(second.hubID)
        #expect(await rig.waitForEvent(timeout: 5) {
            if case .hubClosed(secondHub, .failed(code: "probe_no_capacity", _)) = $0 { true } else { false }
        })
        second.release()
        #expect(rig.simulator.counters(for: ProbeRig.contentID(21)).getstreamRequests == 0)
        // Two players of two other contents: the first takes the free slot, the second the probe's.
        let first = try Player(port: rig.relay.port, contentID: ProbeRig.contentID(22))
        #expect(first.read(bodyBytes: 16 * 1024).status == 200)
        let other = try Player(port: rig.relay.port, contentID: ProbeRig.contentID(23))
        #expect(other.read(bodyBytes: 16 * 1024).status == 200)
        #expect(await rig.waitForEvent(timeout: 5) {
            if case .hubClosed(probeHub, .failed(code: "probe_preempted", _)) = $0 { true } else { false }
        })
        probe.release()
    }

    @Test func aWatchedSourceFoundLoopingIsRecordedAsLoopingAtOnce() async throws {
        let rig = try ProbeRig(loopDetection: true)
        defer { rig.stop() }
        let id = ProbeRig.contentID(31)
        rig.sink.catalog = rig.catalog
        let prober = SourceProber(relay: rig.relay, catalog: rig.catalog, sink: rig.sink, stats: rig.collector, loops: rig.loops,
                                  settings: ProbeSettings(probeSeconds: 2, interval: 3_600, concurrency: 2, startTimeout: 5,
                                                          roundInterval: 0.2, startSpread: 0),
                                  logger: ProbeRig.logger)
        let running = Task { await prober.run() }
        defer { running.cancel() }
        let player = try Player(port: rig.relay.port, contentID: id)
        #expect(player.read(bodyBytes: 16 * 1024).status == 200)
        #expect(await rig.waitForEvent(timeout: 5) { if case .hubMeasured(let m) = $0 { m.hub.content.value == id && m.players == 1 } else { false } })
        let reading = Thread { for _ in 0..<200 where player.read(bodyBytes: 64 * 1024).body > 0 {} }
        reading.start()
        // The window is open once the prober saw the hub watched; then the broadcast loops.
        try await Task.sleep(for: .milliseconds(500))
        rig.simulator.setFault(.frozenLiveLast, for: id)
        rig.startControlPlaneLoop()
        #expect(await eventually(timeout: 15) { rig.sink.latest(id)?.failure == .looping })
        #expect(prober.peakConcurrency == 0, "no probe ran")
    }

    @Test func aWatchedSourceIsMeasuredFromItsHubWithoutAProbe() async throws {
        let rig = try ProbeRig()
        defer { rig.stop() }
        let id = ProbeRig.contentID(30)
        rig.sink.catalog = rig.catalog
        // Made first, so it hears the player's hub from its start.
        let prober = SourceProber(relay: rig.relay, catalog: rig.catalog, sink: rig.sink, stats: rig.collector, loops: rig.loops,
                                  settings: ProbeSettings(probeSeconds: 2, interval: 2, concurrency: 2, startTimeout: 5,
                                                          roundInterval: 0.2, startSpread: 0),
                                  logger: ProbeRig.logger)
        let player = try Player(port: rig.relay.port, contentID: id)
        #expect(player.read(bodyBytes: 16 * 1024).status == 200)
        #expect(await rig.waitForEvent(timeout: 5) { if case .hubMeasured(let m) = $0 { m.hub.content.value == id && m.players == 1 } else { false } })
        // Keep reading so the player stays a live one; on a thread of its own, as a player is.
        let reading = Thread { for _ in 0..<200 where player.read(bodyBytes: 64 * 1024).body > 0 {} }
        reading.start()
        rig.catalog.set([id])
        let running = Task { await prober.run() }
        defer { running.cancel() }
        #expect(await eventually(timeout: 15) { rig.sink.latest(id) != nil })
        let measured = try #require(rig.sink.latest(id))
        #expect(measured.failure == nil)
        #expect(measured.timeToFirstByte == nil, "a window of a hub already live, not a probe's")
        #expect(measured.measuredSeconds >= 1.5)
        #expect(prober.peakConcurrency == 0, "no probe ran")
        #expect(rig.simulator.counters(for: id).getstreamRequests == 1)
    }
}
