import Foundation

/// What ffprobe says of a media file (`-show_streams -show_format`), for tests that
/// compare what the project measures against an independent reader.
public struct FFprobe: Sendable {
    /// One stream as ffprobe lists it.
    public struct Stream: Sendable {
        /// `video`, `audio`, ...
        public var codecType: String
        public var codecName: String
        public var width: Int?
        public var height: Int?
        /// `r_frame_rate` as a number (nil when absent or with a zero denominator).
        public var rFrameRate: Double?
        /// `avg_frame_rate` likewise.
        public var avgFrameRate: Double?
        public var channels: Int?
        public var sampleRate: Int?
    }

    public let streams: [Stream]
    /// The container's size in bytes and duration in seconds, when ffprobe gives them.
    public let size: Double?
    public let duration: Double?

    public var video: Stream? { streams.first { $0.codecType == "video" } }
    public var audio: Stream? { streams.first { $0.codecType == "audio" } }

    // What the tests compare, from the first video and audio streams; 0 or "" when absent.
    public var width: Int { video?.width ?? 0 }
    public var height: Int { video?.height ?? 0 }
    /// Frames per second (`r_frame_rate`).
    public var fps: Double { video?.rFrameRate ?? 0 }
    public var videoCodec: String { video?.codecName ?? "" }
    public var audioCodec: String { audio?.codecName ?? "" }
    public var audioChannels: Int { audio?.channels ?? 0 }

    public static let path = "/usr/bin/ffprobe"
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Runs ffprobe on `file`.
    /// - Throws: `TestFailure` with ffprobe's output when it fails or prints no streams.
    public init(_ file: String) throws {
        let run = try ChildProcess.run(Self.path, ["-v", "error", "-show_streams", "-show_format", "-of", "json", file],
                                       includeStandardError: false)
        guard run.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any],
              let streams = json["streams"] as? [[String: Any]] else {
            throw TestFailure("ffprobe could not read \(file): \(run.output.suffix(500))")
        }
        self.streams = streams.map { stream in
            func rate(_ key: String) -> Double? {
                let parts = (stream[key] as? String ?? "").split(separator: "/").compactMap { Double($0) }
                return parts.count == 2 && parts[1] != 0 ? parts[0] / parts[1] : nil
            }
            return Stream(codecType: stream["codec_type"] as? String ?? "", codecName: stream["codec_name"] as? String ?? "",
                          width: stream["width"] as? Int, height: stream["height"] as? Int,
                          rFrameRate: rate("r_frame_rate"), avgFrameRate: rate("avg_frame_rate"),
                          channels: stream["channels"] as? Int, sampleRate: (stream["sample_rate"] as? String).flatMap { Int($0) })
        }
        let format = json["format"] as? [String: Any]
        size = (format?["size"] as? String).flatMap { Double($0) }
        duration = (format?["duration"] as? String).flatMap { Double($0) }
    }
}
