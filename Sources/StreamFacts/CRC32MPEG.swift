/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, not reflected,
/// no final xor), the checksum that ends every PSI section.
///
/// A section whose CRC, computed over the whole section including its last four
/// bytes, is not zero is corrupt; checking it is what keeps garbage from being
/// read as a program table.
enum CRC32MPEG {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index) << 24
        for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? crc << 1 ^ 0x04C1_1DB7 : crc << 1 }
        return crc
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = crc << 8 ^ table[Int(crc >> 24 ^ UInt32(byte))]
        }
        return crc
    }
}
