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
        guard let video = probe.video, let audio = probe.audio else { throw ProbeTestError("ffprobe found no video and audio in \(path)") }
        width = video.width ?? 0
        height = video.height ?? 0
        fps = video.rFrameRate ?? 0
        videoCodec = video.codecName
        audioCodec = audio.codecName
        self.channels = audio.channels ?? 0
    }

    static var toolsInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: ffmpeg) && FileManager.default.isExecutableFile(atPath: ffprobe)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(tool, arguments)
    }
}
