import Testing
@testable import RelayCore

@Suite struct DiscontinuityPatcherTests {
    private static let audioPID: UInt16 = 0x101

    /// The patcher on a copy of `bytes`: its outcome and the bytes after it.
    private func patched(_ bytes: [UInt8]) -> (DiscontinuityPatcher.Outcome, [UInt8]) {
        var copy = bytes
        let outcome = copy.withUnsafeMutableBytes { DiscontinuityPatcher.patch($0) }
        return (outcome, copy)
    }

    private func discontinuity(_ bytes: [UInt8], packet: Int) -> Bool {
        let p = Array(bytes[(packet * 188)..<((packet + 1) * 188)])
        return (p[3] >> 4) & 0x2 != 0 && p[4] > 0 && p[5] & 0x80 != 0
    }

    @Test func theFirstPCRPacketAfterAJoinPointIsMarkedAndNothingElseChanges() {
        var ts = TSBuilder()
        // PAT, PMT, key frame without PCR, two plain packets, the first PCR, then a second PCR.
        var bytes = ts.pat() + ts.pmt()
        bytes += ts.packet(pid: TSBuilder.videoPID, unitStart: true, randomAccess: true, payload: [0, 0, 1, 0xE0])
        bytes += ts.packet(pid: TSBuilder.videoPID) + ts.packet(pid: TSBuilder.videoPID)
        bytes += ts.packet(pid: TSBuilder.videoPID, pcr: 27_000_000)
        bytes += ts.packet(pid: TSBuilder.videoPID, pcr: 27_100_000)
        let (outcome, after) = patched(bytes)
        #expect(outcome == .patched(length: 6 * 188), "the prefix ends with the first PCR packet")
        #expect(discontinuity(after, packet: 5))
        #expect(!discontinuity(after, packet: 6), "only the first PCR of the clock")
        #expect(!discontinuity(after, packet: 2), "the key frame carries no PCR, so it gets no indicator")
        // One bit in one byte: everything else, the 188-byte grid included, is as it was.
        let changed = zip(bytes, after).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(changed == [5 * 188 + 5])
        #expect(after.count == bytes.count)
    }

    @Test func aPCROnTheKeyFrameIsMarkedRightThere() {
        var ts = TSBuilder()
        let bytes = ts.gop(count: 3, pcr: 5_400_000)
        let (outcome, after) = patched(bytes)
        #expect(outcome == .patched(length: 3 * 188))
        #expect(discontinuity(after, packet: 2))
        #expect(after[2 * 188 + 5] & 0x40 != 0, "the random-access flag is kept")
    }

    @Test func everyProgramsClockIsMarked() {
        var ts = TSBuilder()
        let secondPMT: UInt16 = 0x1001
        // A PAT listing two programs, each PMT naming its own PCR PID.
        var bytes = ts.packet(pid: 0, unitStart: true, payload: [0x00, 0x00, 0xB0, 0x11, 0x00, 0x01, 0xC1, 0x00, 0x00,
                                                                 0x00, 0x01, 0xE0 | UInt8(TSBuilder.pmtPID >> 8), UInt8(TSBuilder.pmtPID & 0xFF),
                                                                 0x00, 0x02, 0xE0 | UInt8(secondPMT >> 8), UInt8(secondPMT & 0xFF), 0, 0, 0, 0])
        bytes += ts.pmt()
        bytes += ts.packet(pid: secondPMT, unitStart: true, payload: [0x00, 0x02, 0xB0, 0x12, 0x00, 0x02, 0xC1, 0x00, 0x00,
                                                                      0xE0 | UInt8(Self.audioPID >> 8), UInt8(Self.audioPID & 0xFF), 0xF0, 0x00,
                                                                      0x0F, 0xE0 | UInt8(Self.audioPID >> 8), UInt8(Self.audioPID & 0xFF), 0xF0, 0x00, 0, 0, 0, 0])
        bytes += ts.packet(pid: TSBuilder.videoPID, unitStart: true, randomAccess: true, pcr: 1_000)
        let (first, _) = patched(bytes)
        #expect(first == .incomplete, "the second program's clock has not come yet")
        bytes += ts.packet(pid: Self.audioPID, pcr: 2_000)
        bytes += ts.packet(pid: Self.audioPID, pcr: 3_000)
        let (outcome, after) = patched(bytes)
        #expect(outcome == .patched(length: 5 * 188))
        #expect(discontinuity(after, packet: 3))
        #expect(discontinuity(after, packet: 4))
        #expect(!discontinuity(after, packet: 5))
    }

    @Test func aProgramWithoutAClockHasNothingToMark() {
        var ts = TSBuilder()
        // A PMT whose PCR PID is 0x1FFF: no PCR at all.
        let bytes = ts.pat() + ts.packet(pid: TSBuilder.pmtPID, unitStart: true, payload: [0x00, 0x02, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00,
                                                                                        0xFF, 0xFF, 0xF0, 0x00, 0, 0, 0, 0])
            + ts.packet(pid: TSBuilder.videoPID)
        #expect(patched(bytes).0 == .noClock)
    }

    @Test func bytesEndingBeforeTheFirstPCRAskForMore() {
        var ts = TSBuilder()
        let bytes = ts.gop(count: 4)
        #expect(patched(bytes).0 == .incomplete)
        #expect(patched([]).0 == .incomplete)
    }
}

@Suite struct SwitchPolicyTests {
    private func seen(_ phase: HubPhase = .streaming, _ upstream: HubUpstream = .flowing, packets: UInt64, code: String? = nil) -> SwitchPolicy.Observation {
        SwitchPolicy.Observation(phase: phase, upstream: upstream, packets: packets, failureCode: code)
    }

    @Test func aStallLongerThanTheFailoverTimeFailsTheSource() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        policy.attached(packets: 100, at: 0)
        verdict = policy.judge(seen(packets: 200), at: 1)
        #expect(verdict == .healthy)
        verdict = policy.judge(seen(packets: 200), at: 4.9)
        #expect(verdict == .healthy, "silence counts from the last new packet (at 1)")
        verdict = policy.judge(seen(packets: 200), at: 5)
        #expect(verdict == .failed(.stalled))
    }

    @Test func anEOFTheSameSessionReconnectCuresInTimeKeepsTheSource() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        policy.attached(packets: 10, at: 0)
        verdict = policy.judge(seen(.streaming, .reconnecting, packets: 10), at: 3)
        #expect(verdict == .healthy)
        verdict = policy.judge(seen(.streaming, .flowing, packets: 50), at: 3.5)
        #expect(verdict == .healthy)
        verdict = policy.judge(seen(.streaming, .flowing, packets: 50), at: 7)
        #expect(verdict == .healthy)
    }

    @Test func anEOFNotCuredWithinTheFailoverTimeFailsAsEOF() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        policy.attached(packets: 10, at: 0)
        verdict = policy.judge(seen(.streaming, .reconnecting, packets: 10), at: 3.9)
        #expect(verdict == .healthy)
        verdict = policy.judge(seen(.streaming, .reconnecting, packets: 10), at: 4)
        #expect(verdict == .failed(.eof))
    }

    @Test func aFailedSameSessionReconnectFailsTheSourceAtOnce() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        policy.attached(packets: 10, at: 0)
        verdict = policy.judge(seen(.streaming, .reconnectFailed, packets: 10), at: 0.3)
        #expect(verdict == .failed(.engineLost))
    }

    @Test func hubEndsAreFailuresWithTheirReason() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        verdict = policy.judge(seen(.failed, packets: 0, code: "stream_looping"), at: 0)
        #expect(verdict == .failed(.looping))
        verdict = policy.judge(seen(.failed, packets: 0, code: "engine_lost"), at: 0)
        #expect(verdict == .failed(.hubFailed))
        verdict = policy.judge(seen(.closed, packets: 0), at: 0)
        #expect(verdict == .failed(.hubClosed))
    }

    @Test func aStartingHubIsLeftToItsOwnStartTimeout() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6)
        var verdict = SwitchPolicy.Verdict.healthy
        policy.attached(packets: 0, at: 0)
        verdict = policy.judge(seen(.starting, packets: 0), at: 20)
        #expect(verdict == .healthy)
        // Silence counts from when it went live, not from the attach.
        verdict = policy.judge(seen(.streaming, packets: 0), at: 23)
        #expect(verdict == .healthy)
        verdict = policy.judge(seen(.streaming, packets: 0), at: 24)
        #expect(verdict == .failed(.stalled))
    }

    @Test func switchesAreCappedInAnySlidingMinute() {
        var policy = SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 2)
        #expect(policy.maySwitch(at: 0))
        policy.switched(at: 0)
        #expect(policy.maySwitch(at: 10))
        policy.switched(at: 10)
        #expect(!policy.maySwitch(at: 30))
        #expect(policy.nextSwitchAllowed(at: 30) == 60)
        #expect(!policy.maySwitch(at: 59.9))
        #expect(policy.maySwitch(at: 60), "the first switch left the window")
        #expect(policy.nextSwitchAllowed(at: 60) == nil)
    }
}
