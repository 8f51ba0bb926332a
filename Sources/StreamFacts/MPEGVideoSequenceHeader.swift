/// The MPEG-1/MPEG-2 video sequence header (start code `00 00 01 B3`): coded
/// picture size and the frame rate from `frame_rate_code`.
public struct MPEGVideoSequenceHeader: Equatable, Sendable {
    /// `horizontal_size_value`: coded width in pixels.
    public var width: Int
    /// `vertical_size_value`: coded height in pixels.
    public var height: Int
    /// Nil for a reserved `frame_rate_code`.
    public var frameRate: Double?

    /// The start code value that begins a sequence header.
    public static let startCode: UInt8 = 0xB3

    private static let frameRates: [Double] = [0, 24000.0 / 1001, 24, 25, 30000.0 / 1001, 30, 50, 60000.0 / 1001, 60]

    /// Parses the bytes that follow `00 00 01 B3`. Nil when too short, a size is
    /// zero, or a forbidden value or missing marker bit shows it is damaged.
    public init?(afterStartCode bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 7 else { return nil }
        width = Int(bytes[0]) << 4 | Int(bytes[1]) >> 4
        height = Int(bytes[1] & 0x0F) << 8 | Int(bytes[2])
        let aspectCode = bytes[3] >> 4
        let code = Int(bytes[3] & 0x0F)
        frameRate = code > 0 && code < Self.frameRates.count ? Self.frameRates[code] : nil
        // aspect_ratio_information 0 is forbidden; the marker bit after the 18-bit bit_rate is 1.
        guard width > 0, height > 0, aspectCode != 0, bytes[6] & 0x20 != 0 else { return nil }
    }

    /// Parses from a byte array holding what follows the start code; for tests.
    public init?(afterStartCode bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ MPEGVideoSequenceHeader(afterStartCode: $0) }) else { return nil }
        self = header
    }
}
