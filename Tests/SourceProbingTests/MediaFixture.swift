import Foundation

/// A short MPEG-TS file made by ffmpeg, and what ffprobe says of it.
struct MediaFixture {
    static let ffmpeg = "/usr/bin/ffmpeg"
    static let ffprobe = "/usr/bin/ffprobe"

    let path: String
    let width: Int
    let height: Int
    let fps: Double
    let videoCodec: String
    let audioCodec: String
    let channels: Int

    /// `size` like "1280x720"; the file stays in `directory`.
    init(directory: String, name: String, size: String, rate: Int, channels: Int, seconds: Int = 3) throws {
        path = "\(directory)/\(name).ts"
        let encode = try Self.run(Self.ffmpeg, [
            "-hide_banner", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate):duration=\(seconds)",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "\(rate)", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-ac", "\(channels)", "-b:a", "96k",
            "-f", "mpegts", path,
        ])
        guard encode.status == 0 else { throw ProbeTestError("ffmpeg failed: \(encode.output)") }
        let probe = try FFprobe(path)
        guard probe.video != nil, probe.audio != nil else { throw ProbeTestError("ffprobe found no video and audio in \(path)") }
        (width, height, fps) = (probe.width, probe.height, probe.fps)
        (videoCodec, audioCodec, self.channels) = (probe.videoCodec, probe.audioCodec, probe.audioChannels)
    }

    static var toolsInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: ffmpeg) && FileManager.default.isExecutableFile(atPath: ffprobe)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(tool, arguments)
    }
}
