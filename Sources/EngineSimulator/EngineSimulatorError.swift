import Foundation

/// Why the simulator could not load its media, listen, or make test media.
///
/// Each description says what was wrong and what to do, in one line.
public enum EngineSimulatorError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The media file could not be read.
    case mediaUnreadable(path: String, reason: String)
    /// The media is not whole 188-byte MPEG-TS packets.
    case mediaNotTransportStream(path: String, reason: String)
    /// The media has fewer than two PCRs, so its bitrate cannot be known.
    case mediaWithoutClock(path: String)
    /// The synthetic bitrate is outside what the generator lays out.
    case syntheticBitrateOutOfRange(Int, minimum: Int, maximum: Int)
    /// The synthetic loop length is outside 1...600 seconds.
    case syntheticDurationOutOfRange(Int)
    /// The bind address is not an IPv4 address.
    case invalidBindAddress(String)
    /// bind(2) or listen(2) failed.
    case cannotListen(host: String, port: UInt16, reason: String)
    /// `start()` was called on a simulator that was already started or shut down.
    case alreadyStarted
    /// No `ffmpeg` executable was found on PATH.
    case ffmpegMissing
    /// ffmpeg ran and failed.
    case ffmpegFailed(status: Int32, message: String)
    /// A bitrate string such as "3M" could not be read.
    case invalidBitrate(String)

    public var description: String {
        switch self {
        case let .mediaUnreadable(path, reason):
            "cannot read media file \(path): \(reason); pass a readable .ts file"
        case let .mediaNotTransportStream(path, reason):
            "media \(path) is not an MPEG-TS file (\(reason)); pass a .ts file of whole 188-byte packets"
        case let .mediaWithoutClock(path):
            "media \(path) has fewer than two PCRs, so its bitrate is unknown; remux it with ffmpeg -c copy -f mpegts"
        case let .syntheticBitrateOutOfRange(value, minimum, maximum):
            "synthetic bitrate \(value) bit/s is out of range; use \(minimum)...\(maximum) bit/s"
        case let .syntheticDurationOutOfRange(seconds):
            "synthetic loop of \(seconds) s is out of range; use 1...600 seconds"
        case let .invalidBindAddress(host):
            "bind address \(host) is not an IPv4 address; use for example 127.0.0.1 or 0.0.0.0"
        case let .cannotListen(host, port, reason):
            "cannot listen on \(host):\(port): \(reason); pick another port or stop what holds it"
        case .alreadyStarted:
            "the engine simulator was already started; make a new one to start again"
        case .ffmpegMissing:
            "ffmpeg was not found on PATH; install it (apt-get install -y ffmpeg)"
        case let .ffmpegFailed(status, message):
            "ffmpeg exited with status \(status): \(message)"
        case let .invalidBitrate(text):
            "bitrate \"\(text)\" is not a number with an optional k or M suffix, such as 3M"
        }
    }

    public var errorDescription: String? { description }
}
