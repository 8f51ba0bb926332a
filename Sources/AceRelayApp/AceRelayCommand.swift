import Store
import Channels
import ArgumentParser
import EngineSimulator
import Foundation
import Logging
import RelayCore
import SystemdNotify

/// `acerelay`: one binary that shares AceStream engine sessions among any
/// number of players.
public struct AceRelayCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "acerelay",
        abstract: "Share one AceStream engine session per content among any number of IPTV players, zero-copy.",
        version: RelayServer.version,
        subcommands: [Serve.self, Demo.self],
        defaultSubcommand: Serve.self)

    public init() {}
}

func bootstrapLogging(_ level: LogLevelSetting) -> Logger {
    let logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
    // Under systemd with stderr to the journal: priority prefixes and no own
    // timestamps (the journal has them), so `journalctl -p warning` filters.
    if JournalLogHandler.stderrIsJournal() {
        LoggingSystem.bootstrap { label in
            var handler = JournalLogHandler(label: label)
            handler.logLevel = logLevel
            return handler
        }
    } else {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
    return Logger(label: "acerelay")
}

/// Prints a configuration error as one line and exits with the usage status.
func exitWithSettingError(_ error: SettingError) -> Never {
    FileHandle.standardError.write(Data("acerelay: \(error)\n".utf8))
    Foundation.exit(2)
}

/// Prints why acerelay cannot do its job as one line and exits with status 1.
func exitWithStartFailure(_ failure: StartFailure) -> Never {
    FileHandle.standardError.write(Data("acerelay: \(failure)\n".utf8))
    Foundation.exit(1)
}

extension AceRelayCommand {
    /// `acerelay serve`: the relay and its control plane.
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve /ace/getstream on the stream port and the orchestrator-compatible API on the control port.",
            discussion: """
            Engines are static (--engine) and/or provisioned as Docker containers (--provision, DOCKER_HOST,
            or DOCKER_HOSTS for several hosts; ACERELAY_RECONCILE_INTERVAL_S between container listings).
            The fleet reads the orchestrator's variables: API_KEY, DOCKER_HOST, DOCKER_NETWORK, CONTAINER_LABEL,
            MIN_REPLICAS, MIN_FREE_REPLICAS, MAX_REPLICAS, MAX_STREAMS_PER_ENGINE, ENGINE_GRACE_PERIOD_S,
            AUTO_DELETE, PORT_RANGE_HOST, STARTUP_TIMEOUT_S, HEALTH_CHECK_INTERVAL_S, HEALTH_FAILURE_THRESHOLD,
            HEALTH_UNHEALTHY_GRACE_PERIOD_S, TARGET_IMAGE; behind a Gluetun VPN: GLUETUN_CONTAINER_NAME,
            GLUETUN_API_PORT, GLUETUN_API_URL, GLUETUN_API_KEY, GLUETUN_HEALTH_CHECK_INTERVAL_S,
            VPN_RESTART_ENGINES_ON_RECONNECT.
            """)

        @OptionGroup var relay: RelayOptions
        @OptionGroup var control: ControlOptions

        @Option(name: .customLong("engine"), parsing: .unconditionalSingleValue, help: "An AceStream engine's HTTP address, e.g. http://127.0.0.1:6878; repeat for several. Env ACERELAY_ENGINES (comma-separated).")
        var engines: [String] = []

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            MallocTuning.limitArenas(environment: environment)
            let settings: ServeSettings
            do throws(SettingError) {
                settings = try ServeSettings(relay: relay, control: control, engines: engines, environment: environment)
            } catch {
                exitWithSettingError(error)
            }
            let logger = bootstrapLogging(settings.level)
            let descriptors = OpenFileLimit.raiseToHardLimit()
            if descriptors < 4_096 {
                logger.warning("only \(descriptors) file descriptors: each player needs one; raise LimitNOFILE / ulimit -n")
            }
            logger.info("resource bounds", metadata: [
                "relay.max_players": "\(settings.relay.maxPlayers)", "relay.descriptors": "\(descriptors)",
                "relay.history_budget_mib": "\(settings.relay.historyBudget >> 20)",
                "relay.max_contents_per_address": "\(settings.relay.maxContentsPerAddress)"])
            do throws(StartFailure) {
                try ComposedControlPlane(settings: settings, environment: environment, logger: logger).run()
            } catch {
                exitWithStartFailure(error)
            }
        }
    }

    /// `acerelay demo`: everything `serve` runs, with a built-in simulated engine playing a real test stream.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the relay and its control plane with a built-in simulated engine playing a test stream, and print the URLs to open.")

        @OptionGroup var relay: RelayOptions
        @OptionGroup var control: ControlOptions

        @Option(name: .customLong("media"), parsing: .unconditional, help: "A .ts file to play. Default: a 1280x720 H.264/AAC test card made once with ffmpeg (or a synthetic stream without ffmpeg).")
        var media: String?

        @Option(name: .customLong("duration"), parsing: .unconditional, help: "Stop after this many seconds (default: run until Ctrl-C).")
        var duration: String?

        /// A fixed, valid content id so the printed URL stays the same between runs.
        static let contentID = "0123456789abcdef0123456789abcdef01234567"
        /// The demo channel's second source, which the simulated engine refuses: it
        /// shows a failed source scored 0 with its reason, below the working one.
        static let refusedContentID = "fedcba9876543210fedcba9876543210fedcba98"

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            MallocTuning.limitArenas(environment: environment)
            var settings: ServeSettings
            let seconds: Double?
            do throws(SettingError) {
                settings = try ServeSettings(relay: relay, control: control, engines: [], environment: environment)
                seconds = try duration.map { text throws(SettingError) in
                    try SettingReader(environment: [:]).double(text, option: "--duration", env: nil, default: 0, range: 0.1...31_536_000)
                }
            } catch {
                exitWithSettingError(error)
            }
            let logger = bootstrapLogging(settings.level)
            OpenFileLimit.raiseToHardLimit()

            var simulatorConfiguration = EngineSimulatorConfiguration()
            simulatorConfiguration.media = try demoMedia(logger: logger)
            let simulator = try EngineSimulator(configuration: simulatorConfiguration, logger: logger)
            try simulator.start()
            defer { simulator.shutdown() }
            simulator.setFault(.loadError, for: Self.refusedContentID)
            let engine = "http://127.0.0.1:\(simulator.port)"
            // The demo's engine is the simulator: no Docker, no per-engine limit, and a
            // throwaway store unless a data directory was asked for.
            settings.engineURLs = [engine]
            settings.provisioning = false
            settings.staticEngineMaxStreams = 0
            // The demo has no API key: it listens on loopback unless an address is asked for.
            if relay.listen == nil && environment["ACERELAY_LISTEN"] == nil { settings.relay.listenHost = "127.0.0.1" }
            if control.apiListen == nil && environment["ACERELAY_API_LISTEN"] == nil { settings.apiAddress.host = "127.0.0.1" }
            // Measure the demo channel's sources within seconds of start, not minutes.
            settings.probe.probeSeconds = min(settings.probe.probeSeconds, 3)
            settings.probe.startSpread = min(settings.probe.startSpread, 1)
            settings.probe.roundInterval = min(settings.probe.roundInterval, 1)
            settings.probe.interval = min(settings.probe.interval, 60)
            let temporaryStore = control.dataDir == nil && environment["ACERELAY_DATA_DIR"] == nil
            if temporaryStore {
                settings.dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-demo-\(getpid())").path
            }
            defer { if temporaryStore { try? FileManager.default.removeItem(atPath: settings.dataDirectory) } }
            func shown(_ host: String) -> String { host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host }
            let host = shown(settings.relay.listenHost)
            let api = "http://\(shown(settings.apiAddress.host)):\(settings.apiAddress.port)"
            do throws(StartFailure) {
                let plane = try ComposedControlPlane(settings: settings, environment: environment, logger: logger)
                try plane.run {
                    Self.addDemoChannel(to: plane.channels, logger: logger)
                    let url = "http://\(host):\(plane.relay.port)/ace/getstream?id=\(Self.contentID)"
                    // write(2) straight away: print() would sit in a buffer when stdout is a pipe.
                    FileHandle.standardOutput.write(Data("""

                    acerelay demo is running: a simulated AceStream engine at \(engine) behind the relay.
                      Play it:        mpv '\(url)'
                                      vlc '\(url)'
                      Panel:          \(api)/panel
                      Channel:        curl -s \(api)/channels/demo-channel
                      Relay status:   curl -s http://\(host):\(plane.relay.port)/ace/status
                      Streams:        curl -s \(api)/streams
                      Metrics:        curl -s \(api)/metrics
                    Press Ctrl-C to stop.

                    """.utf8))
                    if let seconds {
                        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { kill(getpid(), SIGTERM) }
                    }
                }
            } catch {
                simulator.shutdown()
                if temporaryStore { try? FileManager.default.removeItem(atPath: settings.dataDirectory) }
                exitWithStartFailure(error)
            }
        }

        /// A channel of two sources, one playing and one the engine refuses, so
        /// `GET /channels` shows scores, components and a failure reason.
        static func addDemoChannel(to channels: ChannelService, logger: Logger) {
            Task {
                do {
                    guard try await channels.channel(id: "demo-channel") == nil else { return }
                    _ = try await channels.create(ChannelDraft(name: "Demo channel", groupTitle: "Demo", origin: .api,
                                                               sources: [ChannelSourceRecord(contentID: contentID),
                                                                         ChannelSourceRecord(contentID: refusedContentID)]))
                } catch {
                    logger.warning("cannot add the demo channel", metadata: ["control.reason": "\(error)"])
                }
            }
        }

        /// The media the demo plays: `--media`, else a test card made with ffmpeg once
        /// and cached, else the simulator's synthetic stream.
        private func demoMedia(logger: Logger) throws -> SimulatorMedia {
            if let media { return .file(media) }
            let cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/acerelay")
            let path = cache.appendingPathComponent("demo-testcard.ts").path
            if FileManager.default.fileExists(atPath: path) { return .file(path) }
            do {
                try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
                logger.info("making the demo test card with ffmpeg (once)", metadata: ["control.media": "\(path)"])
                try EngineSimulator.makeTestMedia(at: path, seconds: 20)
                return .file(path)
            } catch {
                logger.warning("cannot make a real test stream (\(error)); playing a synthetic stream players cannot decode. Install ffmpeg for a picture.")
                return .synthetic(bitsPerSecond: 3_000_000)
            }
        }
    }
}
