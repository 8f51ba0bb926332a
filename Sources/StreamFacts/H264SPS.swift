/// The facts an H.264 sequence parameter set (NAL type 7) carries about the
/// picture: its displayed size after cropping, whether it is interlaced, and the
/// frame rate from the VUI timing information when the encoder wrote one.
public struct H264SPS: Equatable, Sendable {
    /// `profile_idc`: 66 Baseline, 77 Main, 100 High, ...
    public var profileIDC: Int
    /// `level_idc`: ten times the level (40 is level 4.0).
    public var levelIDC: Int
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    public var chromaFormatIDC: Int
    /// Displayed width in pixels, cropping applied.
    public var width: Int
    /// Displayed height in pixels (a frame, both fields when interlaced), cropping applied.
    public var height: Int
    /// False when the stream may code fields (`frame_mbs_only_flag` = 0).
    public var isProgressive: Bool
    /// `time_scale / (2 × num_units_in_tick)` from the VUI; nil when the VUI has
    /// no timing information.
    public var frameRate: Double?

    /// The NAL unit type of a sequence parameter set.
    public static let nalUnitType: UInt8 = 7

    /// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
    private static let highProfiles: Set<Int> = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]

    /// Parses an SPS from its RBSP (emulation-prevention bytes already removed),
    /// starting with the one-byte NAL header. Nil when the header is not an SPS,
    /// a field is out of range, or the SPS does not end exactly where its syntax
    /// says (truncated or damaged).
    public init?(rbsp: UnsafeRawBufferPointer) {
        var reader = BitReader(rbsp)
        do throws(BitReader.Overrun) {
            guard try reader.bits(1) == 0 else { return nil } // forbidden_zero_bit
            try reader.skip(2)
            guard try reader.bits(5) == UInt32(Self.nalUnitType) else { return nil }
            profileIDC = Int(try reader.bits(8))
            try reader.skip(8) // constraint flags
            levelIDC = Int(try reader.bits(8))
            guard try reader.ue() < 32 else { return nil } // seq_parameter_set_id
            chromaFormatIDC = 1
            var separateColourPlane = false
            if Self.highProfiles.contains(profileIDC) {
                chromaFormatIDC = Int(try reader.ue())
                guard chromaFormatIDC <= 3 else { return nil }
                if chromaFormatIDC == 3 { separateColourPlane = try reader.flag() }
                guard try reader.ue() <= 6, try reader.ue() <= 6 else { return nil } // bit depths
                try reader.skip(1) // qpprime_y_zero_transform_bypass_flag
                if try reader.flag() {
                    for list in 0..<(chromaFormatIDC == 3 ? 12 : 8) {
                        if try reader.flag() { try Self.skipScalingList(&reader, size: list < 6 ? 16 : 64) }
                    }
                }
            }
            guard try reader.ue() <= 12 else { return nil } // log2_max_frame_num_minus4
            switch try reader.ue() { // pic_order_cnt_type
            case 0:
                guard try reader.ue() <= 12 else { return nil }
            case 1:
                try reader.skip(1)
                _ = try reader.se()
                _ = try reader.se()
                let cycle = try reader.ue()
                guard cycle <= 255 else { return nil }
                for _ in 0..<cycle { _ = try reader.se() }
            case 2:
                break
            default:
                return nil
            }
            _ = try reader.ue() // max_num_ref_frames
            try reader.skip(1) // gaps_in_frame_num_value_allowed_flag
            let widthInMBs = Int(try reader.ue()) + 1
            let heightInMapUnits = Int(try reader.ue()) + 1
            isProgressive = try reader.flag()
            if !isProgressive { try reader.skip(1) } // mb_adaptive_frame_field_flag
            try reader.skip(1) // direct_8x8_inference_flag
            let frameHeightFactor = isProgressive ? 1 : 2
            var cropLeft = 0, cropRight = 0, cropTop = 0, cropBottom = 0
            if try reader.flag() {
                cropLeft = Int(try reader.ue())
                cropRight = Int(try reader.ue())
                cropTop = Int(try reader.ue())
                cropBottom = Int(try reader.ue())
            }
            // Crop offsets count chroma samples; a monochrome or separately coded
            // picture counts luma samples (ChromaArrayType 0).
            let chromaArrayType = separateColourPlane ? 0 : chromaFormatIDC
            let cropUnitX = chromaArrayType == 0 || chromaArrayType == 3 ? 1 : 2
            let cropUnitY = (chromaArrayType == 1 ? 2 : 1) * frameHeightFactor
            width = 16 * widthInMBs - cropUnitX * (cropLeft + cropRight)
            height = 16 * heightInMapUnits * frameHeightFactor - cropUnitY * (cropTop + cropBottom)
            guard widthInMBs <= 1024, heightInMapUnits <= 1024, width > 0, height > 0 else { return nil }
        } catch {
            return nil
        }
        // No checksum guards an SPS. Reading it to its end and finding the stop bit
        // where it belongs is what tells a whole one from a damaged one: a flipped
        // bit in an Exp-Golomb code shifts every later field.
        do throws(BitReader.Overrun) {
            frameRate = try reader.flag() ? try Self.vuiFrameRate(&reader) : nil
            guard try Self.endsWithTrailingBits(&reader) else { return nil }
        } catch {
            return nil
        }
    }

    /// True when what is left is `rbsp_trailing_bits`: a one, then zeros (zero bytes may follow).
    private static func endsWithTrailingBits(_ reader: inout BitReader) throws(BitReader.Overrun) -> Bool {
        guard try reader.flag() else { return false }
        while reader.remaining > 0 {
            guard try reader.bits(1) == 0 else { return false }
        }
        return true
    }

    /// Parses an SPS NAL unit as it appears in the stream (header byte first,
    /// emulation-prevention bytes still in).
    public init?(nalUnit: [UInt8]) {
        let rbsp = RBSP.unescape(nalUnit)
        guard let sps = rbsp.withUnsafeBytes({ H264SPS(rbsp: $0) }) else { return nil }
        self = sps
    }

    private static func skipScalingList(_ reader: inout BitReader, size: Int) throws(BitReader.Overrun) {
        var last: Int32 = 8
        var next: Int32 = 8
        for _ in 0..<size {
            if next != 0 {
                // delta_scale is -128...127 in a valid stream, but se(v) carries up to
                // ±2^31: wide arithmetic, so a hostile SPS cannot trap on overflow.
                let delta = Int64(try reader.se())
                next = Int32(((Int64(last) + delta) % 256 + 256) % 256)
            }
            last = next == 0 ? last : next
        }
    }

    private static func vuiFrameRate(_ reader: inout BitReader) throws(BitReader.Overrun) -> Double? {
        if try reader.flag() { // aspect_ratio_info_present_flag
            if try reader.bits(8) == 255 { try reader.skip(32) } // Extended_SAR
        }
        if try reader.flag() { try reader.skip(1) } // overscan
        if try reader.flag() { // video_signal_type_present_flag
            try reader.skip(4)
            if try reader.flag() { try reader.skip(24) } // colour description
        }
        if try reader.flag() { // chroma_loc_info_present_flag
            _ = try reader.ue()
            _ = try reader.ue()
        }
        var rate: Double?
        if try reader.flag() { // timing_info_present_flag
            let unitsInTick = try reader.bits(32)
            let timeScale = try reader.bits(32)
            try reader.skip(1) // fixed_frame_rate_flag
            if unitsInTick > 0, timeScale > 0 {
                let value = Double(timeScale) / (2 * Double(unitsInTick))
                rate = FrameRate.isPlausible(value) ? value : nil
            }
        }
        let nalHRD = try reader.flag()
        if nalHRD { try skipHRDParameters(&reader) }
        let vclHRD = try reader.flag()
        if vclHRD { try skipHRDParameters(&reader) }
        if nalHRD || vclHRD { try reader.skip(1) } // low_delay_hrd_flag
        try reader.skip(1) // pic_struct_present_flag
        if try reader.flag() { // bitstream_restriction_flag
            try reader.skip(1)
            for _ in 0..<6 { _ = try reader.ue() }
        }
        return rate
    }

    private static func skipHRDParameters(_ reader: inout BitReader) throws(BitReader.Overrun) {
        let count = try reader.ue() + 1
        guard count <= 32 else { throw BitReader.Overrun() }
        try reader.skip(8) // bit_rate_scale, cpb_size_scale
        for _ in 0..<count {
            _ = try reader.ue()
            _ = try reader.ue()
            try reader.skip(1)
        }
        try reader.skip(20) // four delay and offset lengths
    }
}

/// Frame-rate helpers shared by the video parsers.
enum FrameRate {
    /// Rates outside this range come from garbage or from a misread field.
    static func isPlausible(_ rate: Double) -> Bool { rate >= 1 && rate <= 300 }
}
