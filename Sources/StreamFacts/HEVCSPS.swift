/// The facts an HEVC sequence parameter set (NAL type 33) carries about the
/// picture: its displayed size after the conformance window.
///
/// The frame rate sits deep in the HEVC VUI, behind reference picture sets;
/// callers take it from the PTS step instead.
public struct HEVCSPS: Equatable, Sendable {
    /// `general_profile_idc`: 1 Main, 2 Main 10, ...
    public var generalProfileIDC: Int
    /// `general_level_idc`: thirty times the level (93 is level 3.1).
    public var generalLevelIDC: Int
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    public var chromaFormatIDC: Int
    /// Displayed width in pixels, conformance window applied.
    public var width: Int
    /// Displayed height in pixels, conformance window applied.
    public var height: Int

    /// The NAL unit type of a sequence parameter set.
    public static let nalUnitType: UInt8 = 33

    /// Parses an SPS from its RBSP (emulation-prevention bytes already removed),
    /// starting with the two-byte NAL header. Nil when it is not an SPS or ends early.
    public init?(rbsp: UnsafeRawBufferPointer) {
        var reader = BitReader(rbsp)
        do throws(BitReader.Overrun) {
            guard try reader.bits(1) == 0 else { return nil } // forbidden_zero_bit
            guard try reader.bits(6) == UInt32(Self.nalUnitType) else { return nil }
            try reader.skip(9) // nuh_layer_id, nuh_temporal_id_plus1
            try reader.skip(4) // sps_video_parameter_set_id
            let maxSubLayersMinus1 = Int(try reader.bits(3))
            guard maxSubLayersMinus1 < 7 else { return nil }
            try reader.skip(1) // sps_temporal_id_nesting_flag
            // profile_tier_level: the general part is 12 bytes, profile_idc in its first.
            try reader.skip(3)
            generalProfileIDC = Int(try reader.bits(5))
            try reader.skip(32 + 4 + 43 + 1)
            generalLevelIDC = Int(try reader.bits(8))
            // One bit per sub-layer: sub_layer_profile_present_flag, sub_layer_level_present_flag.
            var profilePresent: UInt8 = 0
            var levelPresent: UInt8 = 0
            for layer in 0..<maxSubLayersMinus1 {
                if try reader.flag() { profilePresent |= 1 << layer }
                if try reader.flag() { levelPresent |= 1 << layer }
            }
            if maxSubLayersMinus1 > 0 {
                try reader.skip(2 * (8 - maxSubLayersMinus1))
            }
            for layer in 0..<maxSubLayersMinus1 {
                if profilePresent & (1 << layer) != 0 { try reader.skip(88) }
                if levelPresent & (1 << layer) != 0 { try reader.skip(8) }
            }
            guard try reader.ue() < 16 else { return nil } // sps_seq_parameter_set_id
            chromaFormatIDC = Int(try reader.ue())
            guard chromaFormatIDC <= 3 else { return nil }
            var separateColourPlane = false
            if chromaFormatIDC == 3 { separateColourPlane = try reader.flag() }
            let codedWidth = Int(try reader.ue())
            let codedHeight = Int(try reader.ue())
            var left = 0, right = 0, top = 0, bottom = 0
            if try reader.flag() { // conformance_window_flag
                left = Int(try reader.ue())
                right = Int(try reader.ue())
                top = Int(try reader.ue())
                bottom = Int(try reader.ue())
            }
            // The window counts chroma samples: 2 luma columns (and rows for 4:2:0) each.
            let chromaArrayType = separateColourPlane ? 0 : chromaFormatIDC
            let subWidth = chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1
            let subHeight = chromaArrayType == 1 ? 2 : 1
            width = codedWidth - subWidth * (left + right)
            height = codedHeight - subHeight * (top + bottom)
            guard codedWidth <= 16_888, codedHeight <= 16_888, width > 0, height > 0 else { return nil }
        } catch {
            return nil
        }
    }

    /// Parses an SPS NAL unit as it appears in the stream (two header bytes first,
    /// emulation-prevention bytes still in).
    public init?(nalUnit: [UInt8]) {
        let rbsp = RBSP.unescape(nalUnit)
        guard let sps = rbsp.withUnsafeBytes({ HEVCSPS(rbsp: $0) }) else { return nil }
        self = sps
    }
}
