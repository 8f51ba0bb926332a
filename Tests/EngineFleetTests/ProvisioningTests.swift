import Clocks
import DockerEngine
import Foundation
import Testing
@testable import EngineFleet

@Suite struct ContainerTemplateTests {
    @Test func aBridgedEnginePublishesItsDefaultPortsOnTheHostPorts() {
        var configuration = FleetConfiguration()
        configuration.image = "engine:test"
        let container = ContainerTemplate(configuration: configuration)
            .container(hostHTTPPort: 19000, hostAPIPort: 19001, labels: ["extra": "1"], environment: ["A": "b"])
        #expect(container.name == "acestream-19000")
        #expect(container.containerHTTPPort == 6878)
        #expect(container.containerAPIPort == 62062)
        #expect(container.spec.image == "engine:test")
        #expect(container.spec.networkMode == .bridge)
        #expect(container.spec.useInit)
        #expect(container.spec.environment == ["A": "b"])
        #expect(container.spec.portBindings == [
            PortBinding(containerPort: ContainerPort(6878, .tcp), hostPort: 19000, hostIP: nil),
            PortBinding(containerPort: ContainerPort(62062, .tcp), hostPort: 19001, hostIP: nil),
        ])
        #expect(container.spec.labels == [
            "ondemand.app": "myservice", "extra": "1",
            "acestream.http_port": "6878", "acestream.api_port": "62062",
            "host.http_port": "19000", "host.api_port": "19001", "acestream.forwarded": "false",
        ])
        #expect(container.spec.command.suffix(4) == ["--http-port", "6878", "--api-port", "62062"])
    }

    @Test func anEngineBehindAVPNContainerBindsTheHostPortsItselfAndNamesTheVPN() {
        var configuration = FleetConfiguration()
        configuration.networkMode = "container:gluetun"
        let container = ContainerTemplate(configuration: configuration).container(hostHTTPPort: 19010, hostAPIPort: 19011, image: "other:1")
        #expect(container.spec.image == "other:1")
        #expect(container.spec.networkMode == .container("gluetun"))
        #expect(container.spec.portBindings.isEmpty)
        #expect(container.containerHTTPPort == 19010)
        #expect(container.spec.labels["acestream.vpn_container"] == "gluetun")
        #expect(container.spec.command.suffix(4) == ["--http-port", "19010", "--api-port", "19011"])
    }

    @Test func theForwardedEngineRunsOnTheForwardedP2PPortAndSaysSoInItsLabels() {
        var configuration = FleetConfiguration()
        configuration.networkMode = "container:gluetun"
        let container = ContainerTemplate(configuration: configuration).container(hostHTTPPort: 19020, hostAPIPort: 19021, p2pPort: 40_123)
        #expect(container.spec.command.suffix(2) == ["--port", "40123"])
        #expect(container.spec.labels["acestream.forwarded"] == "true")
        #expect(container.spec.labels["acestream.p2p_port"] == "40123")
        let engine = FleetEngine(endpoint: .init(id: "x", baseURL: "http://127.0.0.1:19020"), name: "acestream-19020", host: "127.0.0.1",
                                 port: 19020, labels: container.spec.labels, managed: true, forwarded: true, failureThreshold: 1, now: Date())
        #expect(engine.p2pPort == 40_123, "read back from the label after a restart")
    }
}

@Suite struct ProvisioningBudgetTests {
    private func budget(ports: ClosedRange<Int> = 19000...19005, maxReplicas: Int = 6) -> ProvisioningBudget {
        ProvisioningBudget(ports: ports, breakerThreshold: 2, breakerCooldown: 60, maxReplicas: maxReplicas)
    }

    @Test func aRolledBackReservationGivesItsPortsBackAndCountsAFailure() throws {
        let clock = ManualClock()
        var budget = budget()
        let first = try budget.reserve(requestedPort: nil, forDemand: false, managedCount: 0, now: clock.now).get()
        #expect(first == .init(httpPort: 19000, apiPort: 19001))
        #expect(budget.pending == 1)
        budget.rollback(first, error: "image missing", now: clock.now)
        #expect(budget.pending == 0)
        #expect(budget.failed == 1)
        let again = try budget.reserve(requestedPort: nil, forDemand: false, managedCount: 0, now: clock.now).get()
        #expect(again == first, "the ports were released")
        budget.commit(again)
        #expect(budget.pending == 0)
        #expect(budget.succeeded == 1)
        let next = try budget.reserve(requestedPort: nil, forDemand: false, managedCount: 1, now: clock.now).get()
        #expect(next == .init(httpPort: 19002, apiPort: 19003), "a committed reservation keeps its ports")
    }

    @Test func pendingEnginesCountAgainstMaxReplicas() throws {
        let clock = ManualClock()
        var budget = budget(maxReplicas: 2)
        _ = try budget.reserve(requestedPort: nil, forDemand: false, managedCount: 1, now: clock.now).get()
        let refused = budget.reserve(requestedPort: nil, forDemand: false, managedCount: 1, now: clock.now)
        guard case .failure(let error) = refused else {
            Issue.record("expected max_capacity, got \(refused)")
            return
        }
        #expect(error.code == "max_capacity")
    }

    @Test func repeatedFailuresOpenTheBreakerWithTheLastError() throws {
        let clock = ManualClock()
        var budget = budget()
        for _ in 0..<2 {
            let reservation = try budget.reserve(requestedPort: nil, forDemand: false, managedCount: 0, now: clock.now).get()
            budget.rollback(reservation, error: "daemon refused", now: clock.now)
        }
        guard case .failure(let error) = budget.reserve(requestedPort: nil, forDemand: false, managedCount: 0, now: clock.now) else {
            Issue.record("expected the breaker to refuse")
            return
        }
        #expect(error.code == "circuit_breaker")
        #expect(error.message.contains("daemon refused"))
    }

    @Test func aTakenOrExhaustedPortIsRefusedAndADemandIsConsumedEitherWay() throws {
        let clock = ManualClock()
        var budget = budget(ports: 19000...19002)
        budget.request()
        #expect(budget.requested == 1)
        let first = try budget.reserve(requestedPort: 19000, forDemand: true, managedCount: 0, now: clock.now).get()
        #expect(first.httpPort == 19000)
        #expect(budget.requested == 0)
        guard case .failure(let taken) = budget.reserve(requestedPort: 19000, forDemand: false, managedCount: 0, now: clock.now) else {
            Issue.record("expected a taken port to be refused")
            return
        }
        #expect(taken.message == "host port 19000 is already in use")
        budget.request()
        guard case .failure(let exhausted) = budget.reserve(requestedPort: nil, forDemand: true, managedCount: 0, now: clock.now) else {
            Issue.record("expected an exhausted range to be refused")
            return
        }
        #expect(exhausted.message.contains("no free host port"))
        #expect(budget.requested == 0)
        #expect(budget.pending == 1)
    }
}
