/// An AAC frame in LOAS/LATM transport (PMT stream type 0x11, ISO/IEC
/// 14496-3 §1.7): its length, and the channel layout and sample rate from the
/// `StreamMuxConfig` when this frame carries one.
///
/// Encoders repeat the configuration every few frames and send the others with
/// `useSameStreamMux`; those give a length but no configuration. Only
/// `audioMuxVersion` 0, which is what broadcast and ffmpeg write, is read.
public struct LOASFrame: Equatable, Sendable {
    /// The audio configuration a `StreamMuxConfig` carries.
    public struct Configuration: Equatable, Sendable {
        /// 2 for AAC LC, 5 for SBR (HE-AAC), 29 for PS (HE-AAC v2), ...
        public var audioObjectType: Int
        /// The core sample rate; an SBR stream plays at twice it.
        public var sampleRate: Int
        /// 1–6 as is, 7 means 8 channels; 0 means a program config element follows.
        public var channelConfiguration: Int

        /// Channels for the channel configuration; nil for configuration 0.
        public var channels: Int? {
            switch channelConfiguration {
            case 1...6: channelConfiguration
            case 7: 8
            default: nil
            }
        }
    }

    /// Whole frame length in bytes: the 3-byte sync and length header plus `audioMuxLengthBytes`.
    public var frameLength: Int
    /// Nil when the frame reuses the previous configuration or uses a version not read here.
    public var configuration: Configuration?

    private static let sampleRates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]

    /// Parses a frame at the start of `bytes`; nil without the 0x2B7 sync.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 3, bytes[0] == 0x56, bytes[1] & 0xE0 == 0xE0 else { return nil }
        frameLength = 3 + (Int(bytes[1] & 0x1F) << 8 | Int(bytes[2]))
        configuration = nil
        var reader = BitReader(UnsafeRawBufferPointer(rebasing: bytes[3...]))
        do throws(BitReader.Overrun) {
            guard try !reader.flag() else { return } // useSameStreamMux
            guard try reader.bits(1) == 0 else { return } // audioMuxVersion
            try reader.skip(1 + 6) // allStreamsSameTimeFraming, numSubFrames
            guard try reader.bits(4) == 0, try reader.bits(3) == 0 else { return } // one program, one layer
            var objectType = Int(try reader.bits(5))
            if objectType == 31 { objectType = 32 + Int(try reader.bits(6)) }
            let rateIndex = Int(try reader.bits(4))
            let sampleRate: Int
            if rateIndex == 15 {
                sampleRate = Int(try reader.bits(24))
            } else {
                guard rateIndex < Self.sampleRates.count else { return nil }
                sampleRate = Self.sampleRates[rateIndex]
            }
            let channelConfiguration = Int(try reader.bits(4))
            guard objectType > 0, sampleRate > 0, channelConfiguration <= 7 else { return nil }
            configuration = Configuration(audioObjectType: objectType, sampleRate: sampleRate, channelConfiguration: channelConfiguration)
        } catch {
            return nil
        }
    }

    /// Parses a frame at the start of a byte array; for tests.
    public init?(_ bytes: [UInt8]) {
        guard let frame = bytes.withUnsafeBytes({ LOASFrame($0) }) else { return nil }
        self = frame
    }
}
