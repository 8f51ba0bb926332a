/// An AC-3 or E-AC-3 sync frame header (ETSI TS 102 366): which of the two it
/// is, the channel layout (`acmod` + `lfeon`), the sample rate and frame length.
public struct AC3Header: Equatable, Sendable {
    /// AC-3 (`bsid` ≤ 10) or E-AC-3 (`bsid` 11–16), told apart by `bsid`.
    public enum Kind: Sendable {
        case ac3
        case eac3
    }

    /// Which of the two formats the frame is.
    public var kind: Kind
    /// Bit stream identification: 8 (or lower) for AC-3, 16 for E-AC-3.
    public var bsid: Int
    /// Audio coding mode: 0 = 1+1, 1 = 1/0, 2 = 2/0, 3 = 3/0, 4 = 2/1, 5 = 3/1, 6 = 2/2, 7 = 3/2.
    public var acmod: Int
    /// True when the frame carries a low-frequency effects channel.
    public var lfeOn: Bool
    /// Samples per second.
    public var sampleRate: Int
    /// Whole frame length in bytes.
    public var frameLength: Int
    /// E-AC-3 stream type: 0 independent, 1 dependent, 2 AC-3 converted; 0 for AC-3.
    public var streamType: Int

    /// Full-bandwidth channels per `acmod`, plus one for LFE.
    public var channels: Int {
        let full = [2, 1, 2, 3, 3, 4, 4, 5][acmod]
        return full + (lfeOn ? 1 : 0)
    }

    /// Bytes needed to reach `lfeon` in the worst case.
    public static let minimumLength = 8

    private static let sampleRates = [48000, 44100, 32000]
    private static let reducedSampleRates = [24000, 22050, 16000]
    /// Nominal bit rate in kbit/s per `frmsizecod >> 1`.
    private static let bitRates = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640]

    /// Parses a header at the start of `bytes`. Nil without the 0x0B77 sync, with
    /// a reserved sample rate or frame size code, or a `bsid` neither format uses.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.minimumLength, bytes[0] == 0x0B, bytes[1] == 0x77 else { return nil }
        bsid = Int(bytes[5] >> 3)
        switch bsid {
        case 0...10:
            kind = .ac3
            streamType = 0
            let fscod = Int(bytes[4] >> 6)
            let frameSizeCode = Int(bytes[4] & 0x3F)
            guard fscod < 3, frameSizeCode < 38 else { return nil }
            sampleRate = Self.sampleRates[fscod]
            let kbps = Self.bitRates[frameSizeCode >> 1]
            // 1536 samples per frame; 44.1 kHz frames alternate sizes by one 16-bit word.
            switch fscod {
            case 0: frameLength = kbps * 4
            case 1: frameLength = 2 * (kbps * 1_536_000 / (44_100 * 16) + (frameSizeCode & 1))
            default: frameLength = kbps * 6
            }
            var reader = BitReader(UnsafeRawBufferPointer(rebasing: bytes[5..<8]))
            do throws(BitReader.Overrun) {
                try reader.skip(8) // bsid, bsmod
                acmod = Int(try reader.bits(3))
                if acmod & 1 == 1 && acmod != 1 { try reader.skip(2) } // cmixlev
                if acmod & 4 != 0 { try reader.skip(2) } // surmixlev
                if acmod == 2 { try reader.skip(2) } // dsurmod
                lfeOn = try reader.flag()
            } catch {
                return nil
            }
        case 11...16:
            kind = .eac3
            streamType = Int(bytes[2] >> 6)
            guard streamType < 3 else { return nil }
            frameLength = 2 * ((Int(bytes[2] & 0x07) << 8 | Int(bytes[3])) + 1)
            let fscod = Int(bytes[4] >> 6)
            if fscod == 3 {
                let fscod2 = Int(bytes[4] >> 4 & 0x03)
                guard fscod2 < 3 else { return nil }
                sampleRate = Self.reducedSampleRates[fscod2]
            } else {
                sampleRate = Self.sampleRates[fscod]
            }
            acmod = Int(bytes[4] >> 1 & 0x07)
            lfeOn = bytes[4] & 0x01 == 1
        default:
            return nil
        }
    }

    /// Parses a header at the start of a byte array; for tests.
    public init?(_ bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ AC3Header($0) }) else { return nil }
        self = header
    }
}
