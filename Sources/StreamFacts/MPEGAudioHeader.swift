/// An MPEG-1/MPEG-2 audio frame header (layers I–III; MP2 in broadcast):
/// version, layer, sample rate and channel mode.
public struct MPEGAudioHeader: Equatable, Sendable {
    /// `version` field: 3 = MPEG-1, 2 = MPEG-2 (LSF), 0 = MPEG-2.5.
    public var versionID: Int
    /// 1, 2 or 3.
    public var layer: Int
    /// Samples per second.
    public var sampleRate: Int
    /// 0 stereo, 1 joint stereo, 2 dual channel, 3 mono.
    public var mode: Int
    /// Nominal bit rate in kbit/s; nil for the free format.
    public var bitRate: Int?

    /// Whole frame length in bytes, padding included; nil for the free format.
    public var frameLength: Int?

    /// 1 for mono, else 2.
    public var channels: Int { mode == 3 ? 1 : 2 }

    /// Bytes a header occupies.
    public static let minimumLength = 4

    private static let sampleRates = [44100, 48000, 32000]
    /// Bit rates in kbit/s by index 1...14, for MPEG-1 layers I, II, III and MPEG-2 layer I, layers II/III.
    private static let bitRateTables: [[Int]] = [
        [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
        [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
        [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
        [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ]

    /// Parses a header at the start of `bytes`. Nil without the 11-bit sync, with
    /// a reserved version, layer, bit rate or sample rate.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.minimumLength, bytes[0] == 0xFF, bytes[1] & 0xE0 == 0xE0 else { return nil }
        versionID = Int(bytes[1] >> 3 & 0x03)
        let layerBits = Int(bytes[1] >> 1 & 0x03)
        guard versionID != 1, layerBits != 0 else { return nil }
        layer = 4 - layerBits
        let bitRateIndex = Int(bytes[2] >> 4)
        let rateIndex = Int(bytes[2] >> 2 & 0x03)
        guard bitRateIndex != 15, rateIndex != 3 else { return nil }
        let divisor = versionID == 3 ? 1 : (versionID == 2 ? 2 : 4)
        sampleRate = Self.sampleRates[rateIndex] / divisor
        mode = Int(bytes[3] >> 6)
        if bitRateIndex == 0 {
            bitRate = nil
            frameLength = nil
        } else {
            let table = versionID == 3 ? layer - 1 : (layer == 1 ? 3 : 4)
            let kbps = Self.bitRateTables[table][bitRateIndex - 1]
            bitRate = kbps
            let padding = Int(bytes[2] >> 1 & 0x01)
            switch layer {
            case 1: frameLength = (12 * kbps * 1000 / sampleRate + padding) * 4
            case 2: frameLength = 144 * kbps * 1000 / sampleRate + padding
            default: frameLength = (versionID == 3 ? 144 : 72) * kbps * 1000 / sampleRate + padding
            }
        }
    }

    /// Parses a header at the start of a byte array; for tests.
    public init?(_ bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ MPEGAudioHeader($0) }) else { return nil }
        self = header
    }
}
