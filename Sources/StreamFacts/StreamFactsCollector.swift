/// Learns a source's `StreamFacts` from its MPEG-TS packets as they arrive:
/// PAT → PMT → the first video and first audio elementary streams.
///
/// Owned by one thread. Feed it whole packets in batches, as the relay's ingest
/// has them; it copies only the first bytes of each PES packet on the PIDs it
/// still learns from, into buffers allocated once in `init`, and stops looking
/// at a PID once its facts are known. Corrupt input makes facts stay nil: PSI
/// sections must pass their CRC, and a frame header must be confirmed by the
/// next one before it is believed.
public final class StreamFactsCollector {
    /// What is known so far.
    public private(set) var facts = StreamFacts()

    /// TS packets examined, garbage included.
    public private(set) var packetsSeen = 0

    /// True when everything this stream can tell is known: the program is
    /// mapped, and its video and audio (where it has them, in a codec this
    /// module parses) are fully described. The caller can stop feeding.
    public var isComplete: Bool { programMapped && video.isDone && audio.isDone }

    /// Bytes of each video PES packet kept: enough for the parameter sets that
    /// open an access unit, even behind an access unit delimiter and SEI.
    static let videoPrefixCapacity = 16 * 1024
    /// Bytes of each audio PES packet kept: two AC-3 frames at 640 kbit/s.
    static let audioPrefixCapacity = 6 * 1024
    /// Largest parameter set unescaped; SPSs are a few dozen bytes, scaling lists included a few hundred.
    static let rbspCapacity = 4 * 1024

    private var patAssembler = PSISectionAssembler()
    private var pmtAssembler = PSISectionAssembler()
    private var pmtPID: UInt16?
    private var programMapped = false
    private var video = ElementaryStream(kind: .video)
    private var audio = ElementaryStream(kind: .audio)
    private var videoPrefix = PESPrefix(capacity: videoPrefixCapacity)
    private var audioPrefix = PESPrefix(capacity: audioPrefixCapacity)
    private var cadence = TimestampCadence()
    private let rbsp: UnsafeMutableRawBufferPointer

    public init() {
        rbsp = .allocate(byteCount: Self.rbspCapacity, alignment: 1)
    }

    deinit {
        rbsp.deallocate()
    }

    /// Examines a batch of 188-byte packets. A trailing partial packet is ignored;
    /// a packet without the 0x47 sync byte or with its error indicator set is skipped.
    public func consume(_ packets: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 188 <= packets.count {
            consumePacket(UnsafeRawBufferPointer(rebasing: packets[offset..<(offset + 188)]))
            offset += 188
        }
    }

    private func consumePacket(_ packet: UnsafeRawBufferPointer) {
        packetsSeen += 1
        guard packet[0] == 0x47, packet[1] & 0x80 == 0 else { return }
        let pid = UInt16(packet[1] & 0x1F) << 8 | UInt16(packet[2])
        let unitStart = packet[1] & 0x40 != 0
        let adaptation = packet[3] >> 4 & 0x03
        let continuity = packet[3] & 0x0F
        // Scrambled payloads cannot be read.
        guard adaptation & 0x01 != 0, packet[3] & 0xC0 == 0 else { return }
        var start = 4
        if adaptation & 0x02 != 0 {
            start += 1 + Int(packet[4])
            guard start < 188 else { return }
        }
        let payload = UnsafeRawBufferPointer(rebasing: packet[start..<188])

        if pid == 0 {
            guard !programMapped, let section = patAssembler.append(payload: payload, unitStart: unitStart, continuity: continuity),
                  let mapPID = PAT.firstProgramMapPID(section: section) else { return }
            pmtPID = mapPID
        } else if pid == pmtPID {
            guard !programMapped, let section = pmtAssembler.append(payload: payload, unitStart: unitStart, continuity: continuity),
                  let pmt = PMT(section: section) else { return }
            adopt(pmt)
        } else if pid == video.pid {
            guard !video.isDone else { return }
            consumeVideo(payload, unitStart: unitStart, continuity: continuity)
        } else if pid == audio.pid {
            guard !audio.isDone else { return }
            consumeAudio(payload, unitStart: unitStart, continuity: continuity)
        }
    }

    private func adopt(_ pmt: PMT) {
        programMapped = true
        if let stream = pmt.video, let codec = stream.videoCodec {
            facts.videoCodec = codec
            video.pid = stream.pid
            video.needsHeader = codec != .unknown
            video.needsTiming = codec != .unknown
        }
        if let stream = pmt.audio, let codec = stream.audioCodec {
            facts.audioCodec = codec
            audio.pid = stream.pid
            audio.needsHeader = codec != .unknown
        }
    }

    // MARK: Video

    private func consumeVideo(_ payload: UnsafeRawBufferPointer, unitStart: Bool, continuity: UInt8) {
        if unitStart {
            if video.needsHeader && videoPrefix.hasUnit {
                examineVideo(videoPrefix.contents, truncated: videoPrefix.isTruncated)
                videoPrefix.finishUnit()
            }
            guard let header = PESHeader(payload) else {
                videoPrefix.discard()
                return
            }
            if video.needsTiming, let timestamp = header.dts ?? header.pts {
                cadence.record(timestamp)
                if let rate = cadence.frameRate, facts.fps == nil {
                    facts.fps = rate
                    video.needsTiming = false
                }
            }
            if video.needsHeader {
                videoPrefix.start(UnsafeRawBufferPointer(rebasing: payload[header.payloadOffset...]), continuity: continuity)
            }
        } else if video.needsHeader, videoPrefix.continue(payload, continuity: continuity) {
            examineVideo(videoPrefix.contents, truncated: true)
            videoPrefix.finishUnit()
        }
    }

    /// Looks for the sequence header in the start of one PES packet's payload.
    private func examineVideo(_ bytes: UnsafeRawBufferPointer, truncated: Bool) {
        guard let codec = facts.videoCodec else { return }
        var units = StartCodeScanner(bytes)
        while let unit = units.next() {
            // A unit cut by the end of a truncated prefix is incomplete.
            if truncated && unit.endIndex == bytes.count { return }
            let body = UnsafeRawBufferPointer(rebasing: bytes[unit])
            guard let first = body.first else { continue }
            switch codec {
            case .h264 where first & 0x1F == H264SPS.nalUnitType:
                let count = RBSP.unescape(body, into: rbsp)
                guard let sps = H264SPS(rbsp: UnsafeRawBufferPointer(rebasing: rbsp[0..<count])) else { continue }
                recordPicture(width: sps.width, height: sps.height, frameRate: sps.frameRate)
                return
            case .hevc where first >> 1 & 0x3F == HEVCSPS.nalUnitType:
                let count = RBSP.unescape(body, into: rbsp)
                guard let sps = HEVCSPS(rbsp: UnsafeRawBufferPointer(rebasing: rbsp[0..<count])) else { continue }
                recordPicture(width: sps.width, height: sps.height, frameRate: nil)
                return
            case .mpeg2 where first == MPEGVideoSequenceHeader.startCode, .mpeg1 where first == MPEGVideoSequenceHeader.startCode:
                guard let header = MPEGVideoSequenceHeader(afterStartCode: UnsafeRawBufferPointer(rebasing: body.dropFirst())) else { continue }
                // Muxers give MPEG-1 video the MPEG-2 stream type; only MPEG-2 follows
                // its sequence header with a sequence extension (B5, extension id 1).
                if let following = units.next(), following.count >= 2 {
                    let isExtension = bytes[following.lowerBound] == 0xB5 && bytes[following.lowerBound + 1] >> 4 == 1
                    facts.videoCodec = isExtension ? .mpeg2 : .mpeg1
                }
                recordPicture(width: header.width, height: header.height, frameRate: header.frameRate)
                return
            default:
                continue
            }
        }
    }

    private func recordPicture(width: Int, height: Int, frameRate: Double?) {
        facts.width = width
        facts.height = height
        video.needsHeader = false
        if let frameRate, facts.fps == nil {
            facts.fps = frameRate
            video.needsTiming = false
        }
    }

    // MARK: Audio

    private func consumeAudio(_ payload: UnsafeRawBufferPointer, unitStart: Bool, continuity: UInt8) {
        if unitStart {
            if audioPrefix.hasUnit {
                examineAudio(audioPrefix.contents)
                audioPrefix.finishUnit()
                if audio.isDone { return }
            }
            guard let header = PESHeader(payload) else {
                audioPrefix.discard()
                return
            }
            audioPrefix.start(UnsafeRawBufferPointer(rebasing: payload[header.payloadOffset...]), continuity: continuity)
        } else if audioPrefix.continue(payload, continuity: continuity) {
            examineAudio(audioPrefix.contents)
            audioPrefix.finishUnit()
        }
    }

    /// Finds a frame header confirmed by the frame that follows it. A lone frame
    /// is believed only at the very start of the payload, where PES alignment puts it.
    private func examineAudio(_ bytes: UnsafeRawBufferPointer) {
        guard let codec = facts.audioCodec else { return }
        var offset = 0
        while offset + 8 <= bytes.count {
            let here = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            if let frame = AudioFrame(codec: codec, here) {
                let next = offset + frame.length
                if next + 8 <= bytes.count {
                    let nextBytes = UnsafeRawBufferPointer(rebasing: bytes[next...])
                    let confirmed: Bool
                    if codec == .aacLATM {
                        // The frames between two configurations carry only a sync and a length.
                        confirmed = LOASFrame(nextBytes) != nil
                    } else if let following = AudioFrame(codec: codec, nextBytes) {
                        confirmed = following.codec == frame.codec && following.sampleRate == frame.sampleRate && following.channels == frame.channels
                    } else {
                        confirmed = false
                    }
                    if confirmed {
                        recordAudio(frame)
                        return
                    }
                } else if offset == 0 {
                    recordAudio(frame)
                    return
                }
            }
            offset += 1
        }
    }

    private func recordAudio(_ frame: AudioFrame) {
        facts.audioCodec = frame.codec
        facts.audioChannels = frame.channels
        facts.audioSampleRate = frame.sampleRate
        audio.needsHeader = false
    }
}

/// What the collector tracks about one elementary stream it learns from.
private struct ElementaryStream {
    enum Kind { case video, audio }

    let kind: Kind
    /// Nil until the PMT names one.
    var pid: UInt16?
    /// The sequence or frame header is still to be found.
    var needsHeader = false
    /// The frame rate is still to be measured (video only).
    var needsTiming = false

    var isDone: Bool { !needsHeader && !needsTiming }
}

/// One audio frame header of whichever codec the PMT named.
private struct AudioFrame {
    var codec: AudioCodec
    var channels: Int?
    var sampleRate: Int
    var length: Int

    init?(codec: AudioCodec, _ bytes: UnsafeRawBufferPointer) {
        switch codec {
        case .aac:
            guard let header = ADTSHeader(bytes) else { return nil }
            self.codec = .aac
            channels = header.channels
            sampleRate = header.sampleRate
            length = header.frameLength
        case .aacLATM:
            guard let frame = LOASFrame(bytes), let configuration = frame.configuration, frame.frameLength > 3 else { return nil }
            self.codec = .aacLATM
            channels = configuration.channels
            sampleRate = configuration.sampleRate
            length = frame.frameLength
        case .ac3, .eac3:
            // A dependent E-AC-3 substream extends an independent one; its own acmod is not the layout.
            guard let header = AC3Header(bytes), header.streamType != 1, header.frameLength > 0 else { return nil }
            self.codec = header.kind == .ac3 ? .ac3 : .eac3
            channels = header.channels
            sampleRate = header.sampleRate
            length = header.frameLength
        case .mp2:
            guard let header = MPEGAudioHeader(bytes), let frameLength = header.frameLength, frameLength > 4 else { return nil }
            self.codec = .mp2
            channels = header.channels
            sampleRate = header.sampleRate
            length = frameLength
        case .unknown:
            return nil
        }
    }
}

/// Walks the units of an Annex B byte stream (or MPEG-2 video start codes):
/// each unit starts after a `00 00 01` prefix and runs to the next prefix.
struct StartCodeScanner {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        position = Self.nextStart(in: bytes, from: 0) ?? bytes.count
    }

    /// The byte range of the next unit, without its start code prefix.
    mutating func next() -> Range<Int>? {
        guard position < bytes.count else { return nil }
        let start = position
        guard let following = Self.nextStart(in: bytes, from: start) else {
            position = bytes.count
            return start..<bytes.count
        }
        position = following
        // Trailing zeros before the next prefix belong to it (a 4-byte start code).
        var end = following - 3
        while end > start && bytes[end - 1] == 0 { end -= 1 }
        return start..<end
    }

    /// The index just after the next `00 00 01` at or after `from`.
    private static func nextStart(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var index = from
        while index + 3 <= bytes.count {
            if bytes[index + 2] > 1 {
                index += 3
            } else if bytes[index] == 0 && bytes[index + 1] == 0 && bytes[index + 2] == 1 {
                return index + 3
            } else {
                index += 1
            }
        }
        return nil
    }
}
