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
        let probe: FFprobe
        do { probe = try FFprobe(path) } catch { throw FixtureError.ffprobeFailed("\(error)") }
        video = probe.video.map(Self.probedStream)
        audio = probe.audio.map(Self.probedStream)
    }

    private static func probedStream(_ stream: FFprobe.Stream) -> ProbedStream {
        // A rate of 0/1 is ffprobe saying it does not know.
        ProbedStream(codecType: stream.codecType, codecName: stream.codecName, width: stream.width, height: stream.height,
                     rFrameRate: stream.rFrameRate.flatMap { $0 == 0 ? nil : $0 },
                     avgFrameRate: stream.avgFrameRate.flatMap { $0 == 0 ? nil : $0 },
                     channels: stream.channels, sampleRate: stream.sampleRate)
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
