/// Marks the first PCR of each program clock after a channel switch, so
/// decoders reset their clocks instead of freezing on a time base that jumped.
///
/// `sendfile` cannot change bytes, so the few packets from the new source's
/// join point up to and including the first PCR packet of each PCR PID are
/// copied once per switch, patched here, and written; the player continues
/// with `sendfile` right after them.
///
/// Only packets that already carry a PCR are touched: a PCR always lives in an
/// adaptation field, so no packet ever needs one added and every packet keeps
/// its 188 bytes. The PCR PIDs come from the PMTs the join point starts with.
public enum DiscontinuityPatcher {
    /// What `patch` found in the bytes it was given.
    public enum Outcome: Equatable {
        /// Every PCR PID named by the PMTs got its marker; the first `length`
        /// bytes are the patched prefix (a whole number of packets).
        case patched(length: Int)
        /// The bytes end before every PMT or every first PCR was seen: give it more.
        case incomplete
        /// The PMTs name no PCR PID (or there is no PAT): nothing to mark.
        case noClock
    }

    /// Sets `discontinuity_indicator` in the first PCR-carrying packet of each
    /// PCR PID in `bytes` (whole packets starting at a join point, PAT first).
    public static func patch(_ bytes: UnsafeMutableRawBufferPointer) -> Outcome {
        var pmtPIDs: Set<UInt16> = []
        var pmtsRead: Set<UInt16> = []
        var sawPAT = false
        var pcrPIDs: Set<UInt16> = []
        var marked: Set<UInt16> = []
        var offset = 0
        while offset + TSPacket.size <= bytes.count {
            let packet = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + TSPacket.size)])
            offset += TSPacket.size
            guard packet[0] == TSPacket.syncByte else { continue }
            let pid = UInt16(packet[1] & 0x1F) << 8 | UInt16(packet[2])
            let unitStart = packet[1] & 0x40 != 0
            let control = (packet[3] >> 4) & 0x3
            let hasAdaptation = control & 0x2 != 0
            let adaptationLength = hasAdaptation ? Int(packet[4]) : -1
            if pid == TSPacket.patPID, unitStart, !sawPAT, let section = sectionStart(packet, adaptationLength: adaptationLength) {
                sawPAT = true
                pmtPIDs = programMapPIDs(packet, section: section)
                if pmtPIDs.isEmpty { return .noClock }
            } else if pmtPIDs.contains(pid), unitStart, !pmtsRead.contains(pid),
                      let section = sectionStart(packet, adaptationLength: adaptationLength), section + 10 <= TSPacket.size,
                      packet[section] == 0x02 {
                pmtsRead.insert(pid)
                let pcrPID = UInt16(packet[section + 8] & 0x1F) << 8 | UInt16(packet[section + 9])
                if pcrPID != TSPacket.nullPID { pcrPIDs.insert(pcrPID) }
                if pmtsRead == pmtPIDs, pcrPIDs.isEmpty { return .noClock }
            }
            // A PCR before its PMT was read still counts: it is the first of its clock after the switch.
            if adaptationLength >= 7, packet[5] & 0x10 != 0, !marked.contains(pid) {
                packet[5] |= 0x80
                marked.insert(pid)
            }
            if sawPAT, pmtsRead == pmtPIDs, !pcrPIDs.isEmpty, pcrPIDs.isSubset(of: marked) {
                return .patched(length: offset)
            }
        }
        return .incomplete
    }

    /// Where a PSI section starts in a unit-start packet (after the pointer field).
    private static func sectionStart(_ packet: UnsafeMutableRawBufferPointer, adaptationLength: Int) -> Int? {
        let payload = 4 + (adaptationLength >= 0 ? adaptationLength + 1 : 0)
        guard payload < TSPacket.size else { return nil }
        let section = payload + 1 + Int(packet[payload])
        return section + 3 <= TSPacket.size ? section : nil
    }

    /// The PMT PIDs a PAT section lists (program 0, the network PID, left out).
    private static func programMapPIDs(_ packet: UnsafeMutableRawBufferPointer, section: Int) -> Set<UInt16> {
        guard packet[section] == 0x00 else { return [] }
        let sectionLength = Int(packet[section + 1] & 0x0F) << 8 | Int(packet[section + 2])
        // Programs run from after the 8-byte header to before the CRC, within this packet.
        let end = min(section + 3 + sectionLength - 4, TSPacket.size)
        var pids: Set<UInt16> = []
        var i = section + 8
        while i + 4 <= end {
            let program = UInt16(packet[i]) << 8 | UInt16(packet[i + 1])
            if program != 0 { pids.insert(UInt16(packet[i + 2] & 0x1F) << 8 | UInt16(packet[i + 3])) }
            i += 4
        }
        return pids
    }
}
