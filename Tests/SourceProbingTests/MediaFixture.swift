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
        let probe = try Self.run(Self.ffprobe, ["-v", "error", "-show_streams", "-of", "json", path])
        guard probe.status == 0, let json = try JSONSerialization.jsonObject(with: Data(probe.output.utf8)) as? [String: Any],
              let streams = json["streams"] as? [[String: Any]],
              let video = streams.first(where: { $0["codec_type"] as? String == "video" }),
              let audio = streams.first(where: { $0["codec_type"] as? String == "audio" }) else {
            throw ProbeTestError("ffprobe failed: \(probe.output)")
        }
        width = video["width"] as? Int ?? 0
        height = video["height"] as? Int ?? 0
        let parts = (video["r_frame_rate"] as? String ?? "0/1").split(separator: "/").compactMap { Double($0) }
        fps = parts.count == 2 && parts[1] != 0 ? parts[0] / parts[1] : 0
        videoCodec = video["codec_name"] as? String ?? ""
        audioCodec = audio["codec_name"] as? String ?? ""
        self.channels = audio["channels"] as? Int ?? 0
    }

    static var toolsInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: ffmpeg) && FileManager.default.isExecutableFile(atPath: ffprobe)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(tool, arguments)
    }
}
