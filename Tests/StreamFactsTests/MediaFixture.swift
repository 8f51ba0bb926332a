import Foundation
import TestSupport

/// A small MPEG-TS file made by ffmpeg for one test, and what ffprobe says about it.
struct MediaFixture {
    static let ffmpeg = "/usr/bin/ffmpeg"
    static let ffprobe = "/usr/bin/ffprobe"
    static var toolsInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: ffmpeg) && FileManager.default.isExecutableFile(atPath: ffprobe)
    }

    /// Encoders this ffmpeg build has, by name (`libx264`, `libx265`, `eac3`, ...).
    static let encoders: Set<String> = {
        guard toolsInstalled, let run = try? run(ffmpeg, ["-hide_banner", "-encoders"]), run.status == 0 else { return [] }
        var names: Set<String> = []
        for line in run.output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, fields[0].count == 6 { names.insert(String(fields[1])) }
        }
        return names
    }()

    /// ffprobe's view of one stream.
    struct ProbedStream {
        var codecType: String
        var codecName: String
        var width: Int?
        var height: Int?
        var rFrameRate: Double?
        var avgFrameRate: Double?
        var channels: Int?
        var sampleRate: Int?
    }

    let bytes: [UInt8]
    let video: ProbedStream?
    let audio: ProbedStream?

    /// Runs `ffmpeg -y <arguments> out.ts` in a temporary directory, then ffprobe on the result.
    init(_ arguments: [String]) throws {
        let directory = try TestDirectory("streamfacts")
        let path = directory.file("out.ts")
        let encode = try Self.run(Self.ffmpeg, ["-hide_banner", "-v", "error", "-y"] + arguments + ["-f", "mpegts", path])
        guard encode.status == 0 else { throw FixtureError.ffmpegFailed(encode.output) }
        bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let probe = try Self.run(Self.ffprobe, ["-v", "error", "-show_streams", "-of", "json", path])
        guard probe.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(probe.output.utf8)) as? [String: Any],
              let streams = json["streams"] as? [[String: Any]] else { throw FixtureError.ffprobeFailed(probe.output) }
        let probed = streams.map(Self.probedStream)
        video = probed.first { $0.codecType == "video" }
        audio = probed.first { $0.codecType == "audio" }
    }

    private static func probedStream(_ json: [String: Any]) -> ProbedStream {
        func rate(_ key: String) -> Double? {
            guard let text = json[key] as? String else { return nil }
            let parts = text.split(separator: "/").compactMap { Double($0) }
            guard parts.count == 2, parts[1] != 0, parts[0] != 0 else { return nil }
            return parts[0] / parts[1]
        }
        return ProbedStream(
            codecType: json["codec_type"] as? String ?? "",
            codecName: json["codec_name"] as? String ?? "",
            width: json["width"] as? Int,
            height: json["height"] as? Int,
            rFrameRate: rate("r_frame_rate"),
            avgFrameRate: rate("avg_frame_rate"),
            channels: json["channels"] as? Int,
            sampleRate: (json["sample_rate"] as? String).flatMap { Int($0) }
        )
    }

    enum FixtureError: Error {
        case ffmpegFailed(String)
        case ffprobeFailed(String)
    }

    typealias Run = ChildProcess.Outcome

    static func run(_ executable: String, _ arguments: [String]) throws -> Run {
        try ChildProcess.run(executable, arguments)
    }
}
