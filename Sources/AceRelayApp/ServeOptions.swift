import ArgumentParser
import Foundation
import RelayCore

/// The relay's options, shared by `serve` and `demo`. Every option also reads an
/// environment variable (named in its help); the orchestrator's name is used
/// where one exists, so existing deployments keep their settings.
///
/// Every option takes the next argument as its value even when it starts with
/// a dash, so `--grace-period -5` is a bad value (one line naming the option),
/// not a missing one.
public struct RelayOptions: ParsableArguments {
    @Option(name: .customLong("listen"), parsing: .unconditional, help: "Stream port address HOST:PORT. Env ACERELAY_LISTEN. Default 0.0.0.0:8080.")
    var listen: String?

    @Option(name: .customLong("workers"), parsing: .unconditional, help: "Relay event-loop threads. Env ACERELAY_WORKERS. Default: number of cores.")
    var workers: String?

    @Option(name: .customLong("grace-period"), parsing: .unconditional, help: "Seconds a content's engine session outlives its last player, so zapping back is instant. Env ACERELAY_GRACE_PERIOD_S. Default 30.")
    var gracePeriod: String?

    @Option(name: .customLong("history-seconds"), parsing: .unconditional, help: "Seconds of stream kept per content for joining and lagging players. Env ACERELAY_HISTORY_S. Default 45.")
    var historySeconds: String?

    @Option(name: .customLong("history-max-mb"), parsing: .unconditional, help: "Cap on the history per content, in MiB. Env ACERELAY_HISTORY_MAX_MB. Default 64.")
    var historyMaxMB: String?

    @Option(name: .customLong("start-timeout"), parsing: .unconditional, help: "Seconds an engine has to deliver the first bytes of a new stream. Env STARTUP_TIMEOUT_S. Default 25.")
    var startTimeout: String?

    @Option(name: .customLong("early-head-after"), parsing: .unconditional, help: "Seconds a player waits for a starting stream before it gets 200 and keepalive packets. Env ACERELAY_EARLY_HEAD_AFTER_S. Default 5.")
    var earlyHeadAfter: String?

    @Option(name: .customLong("silence-timeout"), parsing: .unconditional, help: "Seconds without bytes from the engine before reconnecting. Env ACERELAY_SILENCE_TIMEOUT_S. Default 15.")
    var silenceTimeout: String?

    @Option(name: .customLong("reconnect-timeout"), parsing: .unconditional, help: "Seconds of failed reconnecting before a stream's players are closed. Env ACERELAY_RECONNECT_TIMEOUT_S. Default 60.")
    var reconnectTimeout: String?

    @Option(name: .customLong("engine-timeout"), parsing: .unconditional, help: "Time limit in seconds for engine API calls (getstream, stop). Env ACERELAY_ENGINE_TIMEOUT_S. Default 10.")
    var engineTimeout: String?

    @Option(name: .customLong("request-timeout"), parsing: .unconditional, help: "Seconds a client has to send its request head. Env ACERELAY_REQUEST_TIMEOUT_S. Default 10.")
    var requestTimeout: String?

    @Option(name: .customLong("client-max-lag"), parsing: .unconditional, help: "Seconds a player may fall behind live before it skips ahead. Env ACERELAY_CLIENT_MAX_LAG_S. Default 10.")
    var clientMaxLag: String?

    @Option(name: .customLong("max-streams-per-engine"), parsing: .unconditional, help: "Contents one provisioned engine may serve at once, 0 for no limit. Env MAX_STREAMS_PER_ENGINE. Default 3 (the orchestrator's).")
    var maxStreamsPerEngine: String?

    @Option(name: .customLong("max-streams-per-static-engine"), parsing: .unconditional, help: "Contents one --engine may serve at once, 0 for no limit. Env ACERELAY_STATIC_ENGINE_MAX_STREAMS. Default no limit.")
    var maxStreamsPerStaticEngine: String?

    @Option(name: .customLong("log-level"), parsing: .unconditional, help: "trace, debug, info, notice, warning, error or critical. Env ACERELAY_LOG_LEVEL. Default info.")
    var logLevel: String?

    @Option(name: .customLong("drain-seconds"), parsing: .unconditional, help: "On SIGTERM, seconds players already connected may keep streaming while /healthz answers 503 and new players are refused; 0 stops at once. Env ACERELAY_DRAIN_S. Default 0.")
    var drainSeconds: String?

    @Option(name: .customLong("max-players"), parsing: .unconditional, help: "Connections the stream port holds at once; beyond it 503 with Retry-After. 0 for no bound. Env ACERELAY_MAX_PLAYERS. Default: a third of the descriptors left after a reserve for engines, the API and the store.")
    var maxPlayers: String?

    @Option(name: .customLong("max-contents-per-address"), parsing: .unconditional, help: "Streams one player address may have open (opened by it); a new content beyond it is a 429 with Retry-After. 0 for no bound. Env ACERELAY_MAX_CONTENTS_PER_ADDRESS. Default 16.")
    var maxContentsPerAddress: String?

    @Option(name: .customLong("history-budget"), parsing: .unconditional, help: "Bytes (K, M, G suffixes allowed) all streams' histories may hold together; past it every stream keeps a shorter window. 0 for none. Env ACERELAY_HISTORY_BUDGET. Default: a quarter of physical memory.")
    var historyBudget: String?

    @Flag(name: .customLong("proxy-protocol"), help: "Expect a PROXY protocol v1 or v2 header (HAProxy send-proxy) before each request on the stream port; players' addresses are the ones it names. Env ACERELAY_PROXY_PROTOCOL=true. Default off: such a header is a 400.")
    var proxyProtocol = false

    public init() {}

    /// `--drain-seconds`: how long SIGTERM lets connected players finish, 0 for no drain.
    func drainSeconds(environment: [String: String]) throws(SettingError) -> Double {
        try SettingReader(environment: environment).double(drainSeconds, option: "--drain-seconds", env: "ACERELAY_DRAIN_S", default: 0, range: 0...86_400)
    }

    /// `--proxy-protocol`, or `ACERELAY_PROXY_PROTOCOL` when the flag is absent.
    func proxyProtocolEnabled(environment: [String: String]) throws(SettingError) -> Bool {
        if proxyProtocol { return true }
        let text = (environment["ACERELAY_PROXY_PROTOCOL"] ?? "false").lowercased()
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw SettingError(option: "--proxy-protocol", environment: "ACERELAY_PROXY_PROTOCOL", value: text, expected: "true or false")
        }
    }

    /// The relay configuration these options and `environment` describe.
    func relayConfiguration(environment: [String: String]) throws(SettingError) -> RelayConfiguration {
        let read = SettingReader(environment: environment)
        var c = RelayConfiguration()
        let address = try read.address(listen, option: "--listen", env: "ACERELAY_LISTEN", default: "0.0.0.0:8080")
        c.listenHost = address.host
        c.listenPort = address.port
        c.workers = try read.int(workers, option: "--workers", env: "ACERELAY_WORKERS", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...256)
        c.gracePeriod = try read.double(gracePeriod, option: "--grace-period", env: "ACERELAY_GRACE_PERIOD_S", default: 30, range: 0...86_400)
        c.historySeconds = try read.double(historySeconds, option: "--history-seconds", env: "ACERELAY_HISTORY_S", default: 45, range: 5...3_600)
        c.historyMaxBytes = UInt64(try read.int(historyMaxMB, option: "--history-max-mb", env: "ACERELAY_HISTORY_MAX_MB", default: 64, range: 8...16_384)) << 20
        c.startTimeout = try read.double(startTimeout, option: "--start-timeout", env: "STARTUP_TIMEOUT_S", default: 25, range: 1...600)
        c.earlyHeadAfter = try read.double(earlyHeadAfter, option: "--early-head-after", env: "ACERELAY_EARLY_HEAD_AFTER_S", default: 5, range: 0...600)
        c.silenceTimeout = try read.double(silenceTimeout, option: "--silence-timeout", env: "ACERELAY_SILENCE_TIMEOUT_S", default: 15, range: 1...600)
        c.reconnectTimeout = try read.double(reconnectTimeout, option: "--reconnect-timeout", env: "ACERELAY_RECONNECT_TIMEOUT_S", default: 60, range: 1...3_600)
        c.engineRequestTimeout = try read.double(engineTimeout, option: "--engine-timeout", env: "ACERELAY_ENGINE_TIMEOUT_S", default: 10, range: 0.5...120)
        c.requestTimeout = try read.double(requestTimeout, option: "--request-timeout", env: "ACERELAY_REQUEST_TIMEOUT_S", default: 10, range: 0.5...300)
        c.clientMaxLagSeconds = try read.double(clientMaxLag, option: "--client-max-lag", env: "ACERELAY_CLIENT_MAX_LAG_S", default: 10, range: 1...600)
        c.proxyProtocol = try proxyProtocolEnabled(environment: environment)
        c.maxPlayers = try read.int(maxPlayers, option: "--max-players", env: "ACERELAY_MAX_PLAYERS",
                                    default: OpenFileLimit.defaultMaxPlayers(descriptors: OpenFileLimit.raiseToHardLimit()), range: 0...10_000_000)
        c.maxContentsPerAddress = try read.int(maxContentsPerAddress, option: "--max-contents-per-address", env: "ACERELAY_MAX_CONTENTS_PER_ADDRESS",
                                               default: 16, range: 0...100_000)
        c.historyBudget = try read.bytes(historyBudget, option: "--history-budget", env: "ACERELAY_HISTORY_BUDGET",
                                         default: ProcessInfo.processInfo.physicalMemory / 4, minimum: 16 << 20)
        // Test-only hook, deliberately without an option or help text: see RelayConfiguration.testStallLoopAfter.
        if let stall = environment["ACERELAY_TEST_STALL_LOOP_AFTER_S"].flatMap(Double.init), stall >= 0 { c.testStallLoopAfter = stall }
        return c
    }

    /// `--max-streams-per-static-engine`: contents one static engine may serve at once, 0 for no limit.
    func staticEngineMaxStreams(environment: [String: String]) throws(SettingError) -> Int {
        try SettingReader(environment: environment).int(maxStreamsPerStaticEngine, option: "--max-streams-per-static-engine",
                                                        env: "ACERELAY_STATIC_ENGINE_MAX_STREAMS", default: 0, range: 0...1_000)
    }

    func level(environment: [String: String]) throws(SettingError) -> LogLevelSetting {
        let text = SettingReader(environment: environment).raw(logLevel, env: "ACERELAY_LOG_LEVEL") ?? "info"
        guard let level = LogLevelSetting(rawValue: text.lowercased()) else {
            throw SettingError(option: "--log-level", environment: "ACERELAY_LOG_LEVEL", value: text, expected: "trace, debug, info, notice, warning, error or critical")
        }
        return level
    }
}

enum LogLevelSetting: String {
    case trace, debug, info, notice, warning, error, critical
}
