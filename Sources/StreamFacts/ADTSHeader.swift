/// An AAC ADTS frame header (ISO/IEC 13818-7 / 14496-3): channel layout,
/// sample rate and frame length.
public struct ADTSHeader: Equatable, Sendable {
    /// `profile` + 1: 1 Main, 2 LC, 3 SSR, 4 LTP.
    public var audioObjectType: Int
    /// Samples per second, from `sampling_frequency_index`.
    public var sampleRate: Int
    /// `channel_configuration`: 1–6 as is, 7 means 8 channels (7.1); 0 means the
    /// layout is in the stream (a program config element), reported as nil by `channels`.
    public var channelConfiguration: Int
    /// Whole frame length in bytes, header included.
    public var frameLength: Int

    /// Channels for the channel configuration; nil for configuration 0.
    public var channels: Int? {
        switch channelConfiguration {
        case 1...6: channelConfiguration
        case 7: 8
        default: nil
        }
    }

    /// Bytes needed to parse a header (without the optional CRC).
    public static let minimumLength = 7

    private static let sampleRates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]

    /// Parses a header at the start of `bytes`. Nil without the 0xFFF sync, with
    /// layer ≠ 0, a reserved sampling index, or a frame shorter than its header.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.minimumLength,
              bytes[0] == 0xFF, bytes[1] & 0xF6 == 0xF0 else { return nil } // sync, layer 00
        audioObjectType = Int(bytes[2] >> 6) + 1
        let rateIndex = Int(bytes[2] >> 2 & 0x0F)
        guard rateIndex < Self.sampleRates.count else { return nil }
        sampleRate = Self.sampleRates[rateIndex]
        channelConfiguration = Int(bytes[2] & 0x01) << 2 | Int(bytes[3] >> 6)
        frameLength = Int(bytes[3] & 0x03) << 11 | Int(bytes[4]) << 3 | Int(bytes[5]) >> 5
        let headerLength = bytes[1] & 0x01 == 1 ? 7 : 9
        guard frameLength >= headerLength else { return nil }
    }

    /// Parses a header at the start of a byte array; for tests.
    public init?(_ bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ ADTSHeader($0) }) else { return nil }
        self = header
    }
}
