/// The smallest decodable elementary streams: a gray H.264 picture and MPEG audio silence.
///
/// Video is H.264 Constrained Baseline, CAVLC, picture order type 2: an IDR picture whose
/// macroblocks are all Intra 16x16 DC-predicted with no residual (one byte each, mid gray),
/// then P pictures whose macroblocks are all skipped. Audio is MPEG-1 Layer II, 48 kHz mono,
/// 64 kbit/s, every bit allocation zero (silence). Players decode both, and ffmpeg learns
/// frame size and sample rate from them, so `-c copy` works on the stream.
enum SyntheticElementaryStreams {
    /// Picture width in macroblocks (256 pixels).
    static let widthInMacroblocks = 16
    /// Picture height in macroblocks (144 pixels).
    static let heightInMacroblocks = 9
    /// Frames per second written into the SPS timing info.
    static let framesPerSecond = 25
    /// log2(MaxFrameNum): frame_num counts modulo 16.
    static let log2MaxFrameNum = 4

    /// One MPEG-1 Layer II frame: 1152 samples at 48 kHz (24 ms, 2160 ticks of 90 kHz).
    static let audioFrameTicks: Int64 = 2160
    /// Header FF FD 44 C0 (Layer II, no CRC, 64 kbit/s, 48 kHz, mono); zero allocations after it.
    static let silentAudioFrame: [UInt8] = [0xFF, 0xFD, 0x44, 0xC0] + [UInt8](repeating: 0, count: 188)

    /// Access unit delimiter (primary_pic_type 7: any slice type).
    static let accessUnitDelimiter: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x09, 0xF0]

    /// Sequence parameter set NAL unit, with start code.
    static let sequenceParameterSet: [UInt8] = {
        var w = BitWriter()
        w.write(66, bits: 8)                 // profile_idc: Baseline
        w.write(0xC0, bits: 8)               // constraint_set0 and set1: Constrained Baseline
        w.write(30, bits: 8)                 // level_idc 3.0
        w.unsigned(0)                        // seq_parameter_set_id
        w.unsigned(UInt32(log2MaxFrameNum - 4))
        w.unsigned(2)                        // pic_order_cnt_type: order follows frame_num
        w.unsigned(1)                        // max_num_ref_frames
        w.write(0, bits: 1)                  // gaps_in_frame_num_value_allowed_flag
        w.unsigned(UInt32(widthInMacroblocks - 1))
        w.unsigned(UInt32(heightInMacroblocks - 1))
        w.write(1, bits: 1)                  // frame_mbs_only_flag
        w.write(1, bits: 1)                  // direct_8x8_inference_flag
        w.write(0, bits: 1)                  // frame_cropping_flag
        w.write(1, bits: 1)                  // vui_parameters_present_flag
        w.write(0, bits: 4)                  // no aspect ratio, overscan, signal type, chroma location
        w.write(1, bits: 1)                  // timing_info_present_flag
        w.write(1, bits: 32)                 // num_units_in_tick
        w.write(UInt64(2 * framesPerSecond), bits: 32) // time_scale: two ticks per frame
        w.write(1, bits: 1)                  // fixed_frame_rate_flag
        w.write(0, bits: 3)                  // no NAL or VCL HRD, no pic_struct
        w.write(1, bits: 1)                  // bitstream_restriction_flag
        w.write(1, bits: 1)                  // motion_vectors_over_pic_boundaries_flag
        w.unsigned(0)                        // max_bytes_per_pic_denom
        w.unsigned(0)                        // max_bits_per_mb_denom
        w.unsigned(16)                       // log2_max_mv_length_horizontal
        w.unsigned(16)                       // log2_max_mv_length_vertical
        w.unsigned(0)                        // max_num_reorder_frames: no reordering
        w.unsigned(1)                        // max_dec_frame_buffering
        return nalUnit(header: 0x67, w.finishRBSP())
    }()

    /// Picture parameter set NAL unit, with start code.
    static let pictureParameterSet: [UInt8] = {
        var w = BitWriter()
        w.unsigned(0)                        // pic_parameter_set_id
        w.unsigned(0)                        // seq_parameter_set_id
        w.write(0, bits: 2)                  // CAVLC; no bottom-field POC
        w.unsigned(0)                        // num_slice_groups_minus1
        w.unsigned(0)                        // num_ref_idx_l0_default_active_minus1
        w.unsigned(0)                        // num_ref_idx_l1_default_active_minus1
        w.write(0, bits: 3)                  // no weighted prediction
        w.signed(0)                          // pic_init_qp_minus26
        w.signed(0)                          // pic_init_qs_minus26
        w.signed(0)                          // chroma_qp_index_offset
        w.write(0, bits: 3)                  // no deblocking control, constrained intra, redundant pictures
        return nalUnit(header: 0x68, w.finishRBSP())
    }()

    /// An IDR picture: every macroblock I_16x16, DC prediction, no coefficients (mid gray).
    static func idrSlice(idrPictureID: UInt32) -> [UInt8] {
        var w = BitWriter()
        w.unsigned(0)                        // first_mb_in_slice
        w.unsigned(7)                        // slice_type: I, all slices
        w.unsigned(0)                        // pic_parameter_set_id
        w.write(0, bits: log2MaxFrameNum)    // frame_num
        w.unsigned(idrPictureID)
        w.write(0, bits: 2)                  // no_output_of_prior_pics_flag, long_term_reference_flag
        w.signed(0)                          // slice_qp_delta
        for _ in 0..<(widthInMacroblocks * heightInMacroblocks) {
            w.unsigned(3)                    // mb_type I_16x16_2_0_0: DC prediction, no coded blocks
            w.unsigned(0)                    // intra_chroma_pred_mode: DC
            w.signed(0)                      // mb_qp_delta
            w.write(1, bits: 1)              // Intra16x16DCLevel coeff_token: no coefficients (nC 0)
        }
        return nalUnit(header: 0x65, w.finishRBSP())
    }

    /// A P picture with every macroblock skipped: a copy of the previous picture.
    static func skippedSlice(frameNumber: Int) -> [UInt8] {
        var w = BitWriter()
        w.unsigned(0)                        // first_mb_in_slice
        w.unsigned(5)                        // slice_type: P, all slices
        w.unsigned(0)                        // pic_parameter_set_id
        w.write(UInt64(frameNumber % (1 << log2MaxFrameNum)), bits: log2MaxFrameNum)
        w.write(0, bits: 1)                  // num_ref_idx_active_override_flag
        w.write(0, bits: 1)                  // ref_pic_list_modification_flag_l0
        w.write(0, bits: 1)                  // adaptive_ref_pic_marking_mode_flag: sliding window
        w.signed(0)                          // slice_qp_delta
        w.unsigned(UInt32(widthInMacroblocks * heightInMacroblocks)) // mb_skip_run: all of them
        return nalUnit(header: 0x41, w.finishRBSP())
    }

    /// A filler-data NAL unit of exactly `count` bytes (at least 6), start code included.
    static func filler(count: Int) -> [UInt8] {
        precondition(count >= 6, "a filler NAL unit needs 6 bytes")
        return [0x00, 0x00, 0x00, 0x01, 0x0C] + [UInt8](repeating: 0xFF, count: count - 6) + [0x80]
    }

    /// Start code, NAL header, and the RBSP with emulation prevention bytes inserted.
    private static func nalUnit(header: UInt8, _ rbsp: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x00, 0x00, 0x00, 0x01, header]
        var zeros = 0
        for byte in rbsp {
            if zeros >= 2, byte <= 3 {
                out.append(0x03)
                zeros = 0
            }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }
}

/// Writes bit fields most significant bit first, with Exp-Golomb codes (H.264 7.2, 9.1).
struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var current: UInt8 = 0
    private var used = 0

    /// The low `bits` bits of `value`.
    mutating func write(_ value: UInt64, bits: Int) {
        for shift in stride(from: bits - 1, through: 0, by: -1) {
            current = current << 1 | UInt8((value >> UInt64(shift)) & 1)
            used += 1
            if used == 8 {
                bytes.append(current)
                current = 0
                used = 0
            }
        }
    }

    /// ue(v).
    mutating func unsigned(_ value: UInt32) {
        let coded = UInt64(value) + 1
        let length = 64 - coded.leadingZeroBitCount
        write(0, bits: length - 1)
        write(coded, bits: length)
    }

    /// se(v).
    mutating func signed(_ value: Int32) {
        unsigned(value > 0 ? UInt32(2 * value - 1) : UInt32(-2 * Int64(value)))
    }

    /// rbsp_trailing_bits: a one, then zeros to the byte boundary; returns the bytes.
    mutating func finishRBSP() -> [UInt8] {
        write(1, bits: 1)
        if used > 0 { write(0, bits: 8 - used) }
        return bytes
    }
}
