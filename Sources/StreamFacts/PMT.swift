/// A program map table section: the program's elementary streams with their
/// stream types and ES descriptors, and which of them are video and audio.
public struct PMT: Equatable, Sendable {
    /// One elementary stream listed in the PMT.
    public struct Stream: Equatable, Sendable {
        /// ISO/IEC 13818-1 `stream_type` (0x1B H.264, 0x0F AAC, 0x06 private PES, ...).
        public var streamType: UInt8
        /// The elementary stream's PID.
        public var pid: UInt16
        /// Tags of the ES descriptors, in order (0x6A AC-3, 0x7A E-AC-3, 0x05 registration, ...).
        public var descriptorTags: [UInt8]
        /// The format identifier of a registration descriptor (0x05), such as `"AC-3"`, `"EAC3"`, `"HEVC"`.
        public var registration: String?

        public init(streamType: UInt8, pid: UInt16, descriptorTags: [UInt8] = [], registration: String? = nil) {
            self.streamType = streamType
            self.pid = pid
            self.descriptorTags = descriptorTags
            self.registration = registration
        }

        /// The video codec for this stream's type; nil when it is not video.
        public var videoCodec: VideoCodec? {
            switch streamType {
            case 0x1B: .h264
            case 0x24: .hevc
            case 0x02: .mpeg2
            case 0x01: .mpeg1
            case 0x10, 0x1E, 0x1F, 0x20, 0x33, 0x42, 0xD1, 0xEA: .unknown
            case 0x06 where registration == "HEVC": .hevc
            default: nil
            }
        }

        /// The audio codec for this stream's type and descriptors; nil when it is not audio.
        public var audioCodec: AudioCodec? {
            switch streamType {
            case 0x0F: return .aac
            case 0x11: return .aacLATM
            case 0x81: return .ac3
            case 0x87: return .eac3
            case 0x03, 0x04: return .mp2
            case 0x1C, 0x80, 0x82, 0x83, 0x84, 0x85, 0x86, 0xA1, 0xA2: return .unknown
            case 0x06:
                // DVB puts AC-3 and E-AC-3 in private PES, named by a descriptor.
                if descriptorTags.contains(0x7A) || registration == "EAC3" { return .eac3 }
                if descriptorTags.contains(0x6A) || registration == "AC-3" { return .ac3 }
                if descriptorTags.contains(0x7B) || descriptorTags.contains(0x7F) { return .unknown } // DTS, extension (AC-4, DTS-HD)
                return nil
            default:
                return nil
            }
        }
    }

    /// The program this table maps.
    public var programNumber: UInt16
    /// `version_number`, 0–31; it changes when the table does.
    public var version: UInt8
    /// The PID whose adaptation fields carry the program clock.
    public var pcrPID: UInt16
    /// Elementary streams in table order.
    public var streams: [Stream]

    /// The first stream that is video, in PMT order.
    public var video: Stream? { streams.first { $0.videoCodec != nil } }
    /// The first stream that is audio, in PMT order.
    public var audio: Stream? { streams.first { $0.audioCodec != nil } }

    public init(programNumber: UInt16, version: UInt8, pcrPID: UInt16, streams: [Stream]) {
        self.programNumber = programNumber
        self.version = version
        self.pcrPID = pcrPID
        self.streams = streams
    }

    /// Parses one complete PMT section (from `table_id` to the CRC). Nil when the
    /// table id is not 0x02, the CRC fails, or a length runs past the section.
    public init?(section: UnsafeRawBufferPointer) {
        guard section.count >= 12 + 4, section[0] == 0x02, section[1] & 0x80 != 0 else { return nil }
        let sectionLength = Int(section[1] & 0x0F) << 8 | Int(section[2])
        guard sectionLength + 3 == section.count, CRC32MPEG.checksum(section) == 0 else { return nil }
        programNumber = UInt16(section[3]) << 8 | UInt16(section[4])
        version = section[5] >> 1 & 0x1F
        pcrPID = UInt16(section[8] & 0x1F) << 8 | UInt16(section[9])
        let programInfoLength = Int(section[10] & 0x0F) << 8 | Int(section[11])
        let end = section.count - 4
        var offset = 12 + programInfoLength
        guard offset <= end else { return nil }
        var streams: [Stream] = []
        while offset + 5 <= end {
            let streamType = section[offset]
            let pid = UInt16(section[offset + 1] & 0x1F) << 8 | UInt16(section[offset + 2])
            let infoLength = Int(section[offset + 3] & 0x0F) << 8 | Int(section[offset + 4])
            offset += 5
            guard offset + infoLength <= end else { return nil }
            var stream = Stream(streamType: streamType, pid: pid)
            var descriptor = offset
            while descriptor + 2 <= offset + infoLength {
                let tag = section[descriptor]
                let length = Int(section[descriptor + 1])
                guard descriptor + 2 + length <= offset + infoLength else { return nil }
                stream.descriptorTags.append(tag)
                if tag == 0x05, length >= 4 {
                    let identifier = UnsafeRawBufferPointer(rebasing: section[(descriptor + 2)..<(descriptor + 6)])
                    if identifier.allSatisfy({ (0x20...0x7E).contains($0) }) {
                        stream.registration = String(decoding: identifier, as: UTF8.self)
                    }
                }
                descriptor += 2 + length
            }
            offset += infoLength
            streams.append(stream)
        }
        self.streams = streams
    }

    /// Parses a PMT section held in a byte array; for tests.
    public init?(section: [UInt8]) {
        guard let pmt = section.withUnsafeBytes({ PMT(section: $0) }) else { return nil }
        self = pmt
    }
}
