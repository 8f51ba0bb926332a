import Testing
@testable import RelayCore

/// The hub's decisions, driven with a manual clock: `now` is whatever the test says.
@Suite struct HubStateMachineTests {
    let timing = HubStateMachine.Timing(startTimeout: 25, silenceTimeout: 15, reconnectTimeout: 60, gracePeriod: 30)
    let first = EngineEndpoint(id: "a", baseURL: "http://127.0.0.1:1")
    let second = EngineEndpoint(id: "b", baseURL: "http://127.0.0.1:2")

    private func live(at now: Double = 0) -> HubStateMachine {
        var machine = HubStateMachine(timing: timing)
        machine.started(at: now)
        machine.dataArrived(at: now)
        _ = machine.becameLive(at: now)
        return machine
    }

    @Test func timeToFirstByteAndStallSecondsCountOnlyGapsOfASecondOrMoreOnceLive() {
        var machine = HubStateMachine(timing: timing)
        machine.started(at: 10)
        #expect(machine.timeToFirstByte == nil)
        #expect(abs(machine.stallSeconds(at: 14) - 0) < 1e-9, "waiting for the first byte is not a stall")
        machine.dataArrived(at: 12.5)
        _ = machine.becameLive(at: 12.5)
        #expect(abs((machine.timeToFirstByte ?? 0) - 2.5) < 1e-9)
        machine.dataArrived(at: 13.2)  // a short pause: no stall
        #expect(abs(machine.stallSeconds(at: 13.5) - 0) < 1e-9)
        #expect(abs(machine.stallSeconds(at: 16.2) - 3) < 1e-9, "the gap in progress counts")
        machine.dataArrived(at: 17.2)
        #expect(abs(machine.stallSeconds(at: 17.3) - 4) < 1e-9)
        machine.dataArrived(at: 17.5)
        #expect(abs(machine.stallSeconds(at: 19.5) - 6) < 1e-9)
        machine.closed()
        #expect(abs(machine.stallSeconds(at: 30) - 4) < 1e-9, "a closed hub stalls no more")
    }

    @Test func aStartThatRunsOutOfTimeFailsAndALiveHubIgnoresTheDeadline() {
        var machine = HubStateMachine(timing: timing)
        machine.started(at: 0)
        #expect(machine.startDeadlinePassed()?.code == "engine_timeout")
        let r1 = machine.becameLive(at: 3)
        #expect(r1 == .started)
        #expect(machine.startDeadlinePassed() == nil)
    }

    @Test func aFailedStartTriesTheOtherEnginesThenFailsWithTheEnginesReason() {
        var machine = HubStateMachine(timing: timing)
        machine.started(at: 0)
        let r2 = machine.attemptFailed(engine: first, reason: "getstream failed", at: 1)
        #expect(r2 == .tryAnotherEngine(abandon: first, excluding: [first]))
        let r3 = machine.attemptFailed(engine: second, reason: "bad json", at: 2)
        #expect(r3 == .tryAnotherEngine(abandon: second, excluding: [first, second]))
        let none = EngineUnavailable(code: "no_engine", message: "no engine left", retryAfterSeconds: 5)
        guard case .fail(let failure) = machine.engineUnavailable(none, lastAttemptError: "bad json", at: 3) else {
            Issue.record("should fail")
            return
        }
        #expect(failure.code == "engine_error")
        #expect(failure.message == "bad json")
    }

    @Test func silenceMakesStallsThenAReconnect() {
        var machine = live()
        let r4 = machine.tick(at: 0.5, packetsSinceOpen: 10, retryPending: false)
        #expect(r4 == .init())
        let stalled = machine.tick(at: 1.5, packetsSinceOpen: 10, retryPending: false)
        #expect(stalled.stallBegan && stalled.keepalive && stalled.outcome == .nothing)
        machine.keepaliveWritten(at: 1.5)
        // Still quiet: more keepalives, the stall counted once.
        let again = machine.tick(at: 2.5, packetsSinceOpen: 10, retryPending: false)
        #expect(!again.stallBegan && again.keepalive)
        machine.keepaliveWritten(at: 2.5)
        let r5 = machine.tick(at: 15, packetsSinceOpen: 10, retryPending: false)
        #expect(r5.outcome == .reconnect("no data from the engine for 15 s"))
        let r6 = machine.beginReconnect(at: 15)
        #expect(r6)
        let r7 = machine.beginReconnect(at: 15)
        #expect(!r7, "only a live hub begins a reconnect")
    }

    @Test func dataEndsAStall() {
        var machine = live()
        let r8 = machine.tick(at: 1.5, packetsSinceOpen: 1, retryPending: false)
        #expect(r8.stallBegan)
        machine.keepaliveWritten(at: 1.5)
        machine.dataArrived(at: 2)
        #expect(!machine.inStall)
        let r9 = machine.tick(at: 3.5, packetsSinceOpen: 1, retryPending: false)
        #expect(r9.stallBegan, "a new stall counts again")
    }

    @Test func reconnectsEscalateFromPlaybackToSessionToAnotherEngine() {
        var machine = live()
        let r10 = machine.beginReconnect(at: 10)
        #expect(r10)
        let r11 = machine.attemptFailed(engine: first, reason: "playback failed", at: 11)
        #expect(r11 == .retryLater(after: 0.5, abandon: nil))
        let r12 = machine.retryDue(at: 11.5)
        #expect(r12 == .openSession)
        let r13 = machine.attemptFailed(engine: first, reason: "getstream failed", at: 12)
        #expect(r13 == .retryLater(after: 1, abandon: first))
        let r14 = machine.retryDue(at: 13)
        #expect(r14 == .reserveEngine(excluding: [first]))
        let r15 = machine.becameLive(at: 14)
        #expect(r15 == .recovered(afterSeconds: 4))
        #expect(machine.isLive)
    }

    @Test func aReconnectAttemptWithoutDataFailsAfterTheSilenceLimit() {
        var machine = live()
        let r16 = machine.beginReconnect(at: 10)
        #expect(r16)
        let r17 = machine.tick(at: 19, packetsSinceOpen: 0, retryPending: false)
        #expect(r17.outcome == .nothing)
        let r18 = machine.tick(at: 20, packetsSinceOpen: 0, retryPending: true)
        #expect(r18.outcome == .nothing, "a retry is on its way")
        let r19 = machine.tick(at: 20, packetsSinceOpen: 0, retryPending: false)
        #expect(r19.outcome == .attemptFailed("no data within 10 s of reconnecting"))
    }

    @Test func aReconnectThatRunsOutOfTimeFailsTheHub() {
        var machine = live()
        let r20 = machine.beginReconnect(at: 10)
        #expect(r20)
        guard case .fail(let failure) = machine.tick(at: 70, packetsSinceOpen: 0, retryPending: true).outcome else {
            Issue.record("should fail")
            return
        }
        #expect(failure.code == "engine_lost")
        guard case .fail = machine.attemptFailed(engine: first, reason: "refused", at: 71) else {
            Issue.record("an attempt failing after the deadline fails the hub")
            return
        }
    }

    @Test func noEngineWhileReconnectingKeepsTryingThemAll() {
        var machine = live()
        let r21 = machine.beginReconnect(at: 10)
        #expect(r21)
        let none = EngineUnavailable(code: "no_engine", message: "none", retryAfterSeconds: 5)
        let r22 = machine.engineUnavailable(none, lastAttemptError: "x", at: 12)
        #expect(r22 == .retryLater(after: 2, abandon: nil))
        let r23 = machine.retryDue(at: 14)
        #expect(r23 == .reserveEngine(excluding: []))
    }

    @Test func theGracePeriodExpiresOnlyAfterItsFullLengthWithoutPlayers() {
        var machine = live()
        #expect(!machine.graceExpired(at: 100), "players attached")
        machine.lastPlayerLeft(at: 100)
        #expect(!machine.graceExpired(at: 129))
        #expect(machine.graceExpired(at: 130))
        machine.playerArrived()
        #expect(!machine.graceExpired(at: 200))
        machine.lastPlayerLeft(at: 200)
        machine.closed()
        #expect(!machine.graceExpired(at: 300), "a closed hub does not close again")
    }

    @Test func aClosedHubIgnoresEverything() {
        var machine = live()
        machine.closed()
        let r24 = machine.attemptFailed(engine: first, reason: "x", at: 1)
        #expect(r24 == .nothing)
        let r25 = machine.becameLive(at: 1)
        #expect(r25 == nil)
        let r26 = machine.retryDue(at: 1)
        #expect(r26 == nil)
        let r27 = machine.tick(at: 100, packetsSinceOpen: 0, retryPending: false)
        #expect(r27 == .init())
    }
}
