import Foundation

/// What a `stat_url` answered.
public enum StatReading: Sendable, Equatable {
    case sample(StatSample)
    /// The engine no longer knows the session: it ended.
    case sessionEnded
    /// Anything else: no answer, an error, or not the engine's JSON.
    case failed(String)

    /// Reads a stat body, accepting the field quirks real engines have:
    /// camelCase speeds, numbers sent as strings, and `live_last` missing in
    /// favour of `last_ts` or `last`.
    public static func parse(_ body: [UInt8], at: Date) -> StatReading {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .failed("stat answer is not JSON")
        }
        if let error = object["error"] as? String, !error.isEmpty {
            return error.lowercased().contains("unknown playback session") ? .sessionEnded : .failed("engine: \(error)")
        }
        guard let response = object["response"] as? [String: Any] else { return .failed("stat answer has no response") }
        var sample = StatSample(at: at)
        sample.peers = int(response["peers"])
        sample.speedDown = int(response["speed_down"] ?? response["speedDown"])
        sample.speedUp = int(response["speed_up"] ?? response["speedUp"])
        sample.downloaded = int64(response["downloaded"])
        sample.uploaded = int64(response["uploaded"])
        sample.status = response["status"] as? String
        if let livepos = response["livepos"] as? [String: Any] {
            let last = int64(livepos["live_last"]) ?? int64(livepos["last_ts"]) ?? int64(livepos["last"])
            sample.livepos = StatSample.Livepos(
                pos: int64(livepos["pos"]), liveFirst: int64(livepos["live_first"]) ?? int64(livepos["first_ts"]),
                liveLast: last, firstTS: int64(livepos["first_ts"]), lastTS: int64(livepos["last_ts"]),
                bufferPieces: int(livepos["buffer_pieces"]))
        }
        return .sample(sample)
    }

    private static func int64(_ value: Any?) -> Int64? {
        // A number beyond Int64 or not finite ("1e30", "nan") is no value: converting it traps.
        switch value {
        case let number as NSNumber:
            let double = number.doubleValue
            guard double.isFinite, abs(double) < 9.2e18 else { return nil }
            return number.int64Value
        case let text as String:
            return Int64(text.trimmingCharacters(in: .whitespaces)) ?? Double(text).flatMap { Int64(exactly: $0.rounded(.towardZero)) }
        default: return nil
        }
    }

    private static func int(_ value: Any?) -> Int? { int64(value).map { Int(clamping: $0) } }
}
