import Clocks
import Foundation
import Logging
import RelayCore
import Testing
@testable import EngineFleet

@Suite struct EngineURLPolicyTests {
    private func fleet() -> EngineFleet {
        let clock = ManualClock()
        let fleet = EngineFleet(clock: clock, maxStreamsPerEngine: 3, startupTimeout: 25, failureThreshold: 3, logger: Logger(label: "test"))
        // A static engine known by its URL, and a managed one by its published host port.
        fleet.register(FleetEngine(endpoint: EngineEndpoint(id: "http://127.0.0.1:6878", baseURL: "http://127.0.0.1:6878"),
                                   name: "static", host: "127.0.0.1", port: 6878, managed: false, failureThreshold: 3, now: clock.now))
        fleet.register(FleetEngine(endpoint: EngineEndpoint(id: "c1", baseURL: "http://engine-host:19001"), name: "acestream-1",
                                   host: "engine-host", port: 19001, managed: true, failureThreshold: 3, now: clock.now))
        return fleet
    }

    @Test func onlyURLsOnAnEngineOfTheFleetMayBeCalled() {
        let policy = EngineURLPolicy(fleet: fleet())
        #expect(policy.refusal(for: "http://127.0.0.1:6878/ace/stat/x/y") == nil)
        #expect(policy.refusal(for: "http://ENGINE-HOST:19001/ace/cmd/x/y") == nil)
        #expect(policy.refusal(for: "http://127.0.0.1:6879/ace/stat/x/y")?.contains("127.0.0.1:6879 is not an engine") == true)
        #expect(policy.refusal(for: "http://127.0.0.2:6878/ace/stat/x/y") != nil)
        #expect(policy.refusal(for: "http://127.0.0.1/ace/stat") != nil, "port 80 is not 6878")
        #expect(policy.refusal(for: "gopher://127.0.0.1:6878/") == "not an http(s) URL with a host")
        #expect(policy.refusal(for: "127.0.0.1:6878/ace/stat") != nil, "no scheme")
    }

    @Test func foreignHostsAreAllowedWhenTheSettingSaysSo() {
        let policy = EngineURLPolicy(fleet: fleet(), allowsForeignHosts: true)
        #expect(policy.refusal(for: "http://10.9.8.7:1234/ace/stat/x/y") == nil)
        #expect(policy.refusal(for: "dict://10.9.8.7:1234/") != nil, "still http(s) only")
    }
}
