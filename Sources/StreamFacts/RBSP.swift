/// Turns a NAL unit's bytes into its raw byte sequence payload (RBSP) by
/// removing emulation-prevention bytes: every `00 00 03` becomes `00 00`.
public enum RBSP {
    /// Copies `source` into `destination` without emulation-prevention bytes and
    /// returns the number of bytes written. Stops when `destination` is full, so
    /// a caller gets at most `destination.count` bytes.
    public static func unescape(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        var zeros = 0
        for byte in source {
            if zeros >= 2 && byte == 0x03 {
                zeros = 0
                continue
            }
            guard written < destination.count else { break }
            destination[written] = byte
            written += 1
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return written
    }

    /// The RBSP of `nalUnit` as a new array; for tests and one-off callers.
    public static func unescape(_ nalUnit: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: nalUnit.count)
        let count = nalUnit.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { unescape(source, into: $0) }
        }
        output.removeLast(nalUnit.count - count)
        return output
    }
}
