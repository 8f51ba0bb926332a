/// MPEG-TS constants (ISO/IEC 13818-1) the relay relies on.
public enum TSPacket {
    public static let size = 188
    public static let syncByte: UInt8 = 0x47
    public static let nullPID: UInt16 = 0x1FFF
    public static let patPID: UInt16 = 0x0000

    /// A null packet: PID 0x1FFF, payload only, stuffing bytes. Demuxers discard
    /// it, so it keeps a player's connection alive without touching its state.
    public static let null: [UInt8] = {
        var p = [UInt8](repeating: 0xFF, count: size)
        p[0] = syncByte
        p[1] = 0x1F
        p[2] = 0xFF
        p[3] = 0x10
        return p
    }()
}
