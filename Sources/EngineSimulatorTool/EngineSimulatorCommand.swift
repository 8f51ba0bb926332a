import ArgumentParser
import Dispatch
import EngineSimulator
import Foundation
import Logging

/// `acestream-engine-sim`: the engine simulator as a process, taking the real engine's flags so
/// it can stand where an engine container's entry point would.
@main
struct EngineSimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acestream-engine-sim",
        abstract: "A stand-in AceStream engine: the engine's HTTP API, looped MPEG-TS media, and faults.",
        discussion: """
            Accepts the real engine's flags. Control it with GET /sim/counters and
            GET /sim/fault?id=<content or empty>&kind=hang|stall|eof|garbage|frozen|loaderror|die|clear\
            &seconds=N&bytes=N. Runs until SIGTERM or SIGINT.
            """)

    @Option(name: .customLong("http-port"), help: "Port of the HTTP API and playback (0: ephemeral).")
    var httpPort: UInt16 = 6878

    @Option(name: .customLong("api-port"), help: "The engine's old TCP API port (accepted, ignored).")
    var apiPort: UInt16 = 62062

    @Option(name: .customLong("port"), help: "The engine's P2P port (accepted, ignored).")
    var p2pPort: UInt16 = 8621

    @Flag(name: .customLong("bind-all"), help: "Listen on 0.0.0.0 instead of 127.0.0.1.")
    var bindAll = false

    @Option(name: .customLong("live-cache-type"), help: "Accepted, ignored.")
    var liveCacheType: String?

    @Option(name: .customLong("live-mem-cache-size"), help: "Accepted, ignored.")
    var liveMemoryCacheSize: Int?

    @Option(name: .customLong("live-buffer"), help: "Accepted, ignored.")
    var liveBuffer: Int?

    @Flag(name: .customLong("disable-sentry"), help: "Accepted, ignored.")
    var disableSentry = false

    @Flag(name: .customLong("log-stdout"), help: "Accepted, ignored (logs go to standard error).")
    var logStdout = false

    @Flag(name: .customLong("disable-upnp"), help: "Accepted, ignored.")
    var disableUPnP = false

    @Option(name: .customLong("media"), help: "An MPEG-TS file to loop instead of synthetic media.")
    var mediaPath: String?

    @Option(name: .customLong("synthetic-bitrate"), help: "Bitrate of the synthetic media, bit/s.")
    var syntheticBitrate: Int = 2_000_000

    @Option(name: .customLong("advertised-host"), help: "Host written into the URLs getstream returns.")
    var advertisedHost: String = "127.0.0.1"

    @Flag(name: .customLong("camel-case-stats"), help: "Quirk: stat keys speedDown/speedUp.")
    var camelCaseStats = false

    @Option(name: .customLong("initial-burst"), help: "Seconds of media sent at once when playback opens.")
    var initialBurstSeconds: Double = 2

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    /// Engine images start the engine as `python main.py <flags>`; an image of the
    /// simulator installs it as `python`, so the script name arrives as an argument.
    @Argument(help: "The real engine's script name, main.py, when started as `python main.py <flags>` (accepted, ignored).")
    var script: [String] = []

    /// Parses like ArgumentParser, but reports a bad command line in one line, not with the usage text.
    static func main() {
        let command: EngineSimulatorCommand
        do {
            command = try parse()
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) }
            FileHandle.standardError.write(Data("acestream-engine-sim: \(message(for: error))\n".utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
        do {
            try command.run()
        } catch {
            FileHandle.standardError.write(Data("acestream-engine-sim: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard initialBurstSeconds >= 0 else { throw ValidationError("--initial-burst must be 0 or more seconds") }
        guard script.allSatisfy({ $0.hasSuffix(".py") }) else {
            throw ValidationError("unexpected argument '\(script.first { !$0.hasSuffix(".py") } ?? "")'")
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration = EngineSimulatorConfiguration()
        configuration.host = bindAll ? "0.0.0.0" : "127.0.0.1"
        configuration.port = httpPort
        configuration.media = mediaPath.map(SimulatorMedia.file) ?? .synthetic(bitsPerSecond: syntheticBitrate)
        configuration.advertisedHost = advertisedHost
        configuration.camelCaseStats = camelCaseStats
        configuration.initialBurstSeconds = initialBurstSeconds

        // Signals are taken by dispatch sources, not by handlers, so shutdown runs on a normal thread.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }

        let simulator = try EngineSimulator(configuration: configuration,
                                            logger: Logger(label: "acestream-engine-sim"))
        try simulator.start()
        // One line on stdout, so a script that asked for port 0 can read the port.
        let ready = "acestream-engine-sim listening on \(configuration.host):\(simulator.port)\n"
        FileHandle.standardOutput.write(Data(ready.utf8))
        stop.wait()
        simulator.shutdown()
        sources.forEach { $0.cancel() }
    }
}
