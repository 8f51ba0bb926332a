import Foundation

extension EngineSimulator {
    /// Makes a real H.264/AAC MPEG-TS file with ffmpeg (test pattern and a 1 kHz tone, 25 fps,
    /// a key frame every 2 s), for tests that want what a real engine carries.
    ///
    /// - Parameters:
    ///   - path: where to write the file (overwritten).
    ///   - seconds: its length.
    ///   - videoBitrate: ffmpeg's notation, such as "3M" or "800k"; also the max rate, with a
    ///     buffer of twice that.
    ///   - size: frame size, such as "1280x720".
    /// - Throws: `EngineSimulatorError.ffmpegMissing` when no ffmpeg is on PATH,
    ///   `.ffmpegFailed` with its last error line, `.invalidBitrate` for an unreadable bitrate.
    public static func makeTestMedia(
        at path: String, seconds: Int, videoBitrate: String = "3M", size: String = "1280x720"
    ) throws {
        guard let bitsPerSecond = bitrate(videoBitrate) else { throw EngineSimulatorError.invalidBitrate(videoBitrate) }
        guard let ffmpeg = executable(named: "ffmpeg") else { throw EngineSimulatorError.ffmpegMissing }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = [
            "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25",
            "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
            "-t", String(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-b:v", videoBitrate, "-maxrate", videoBitrate, "-bufsize", String(bitsPerSecond * 2),
            "-g", "50", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k",
            "-f", "mpegts", path,
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read before waiting: a child blocked on a full pipe would never exit.
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
            throw EngineSimulatorError.ffmpegFailed(
                status: process.terminationStatus, message: lines.last.map(String.init) ?? "no error output")
        }
    }

    /// "3M" → 3_000_000, "800k" → 800_000, "2500000" → 2_500_000.
    private static func bitrate(_ text: String) -> Int? {
        let multiplier = switch text.last {
        case "k", "K": 1_000
        case "m", "M": 1_000_000
        default: 1
        }
        let digits = multiplier == 1 ? Substring(text) : text.dropLast()
        guard let value = Double(digits), value > 0 else { return nil }
        return Int(value * Double(multiplier))
    }

    /// The first executable called `name` on PATH.
    private static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":")
            .map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
