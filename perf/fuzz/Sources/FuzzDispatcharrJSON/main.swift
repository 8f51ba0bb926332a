import Dispatcharr
import FuzzSupport

// A Dispatcharr answer: parsed by JSONValue's own reader, read as a channel,
// a group and a stream, and written back. What is written must read back the
// same, since acerelay writes other tools' stream_stats back to Dispatcharr.
FuzzEntryPoint.run { input in
    guard let value = JSONValue.parse(Array(input)) else { return }
    for item in [value] + (value.arrayValue ?? []) + (value["results"]?.arrayValue ?? []) {
        _ = DispatcharrChannel(json: item)
        _ = DispatcharrGroup(json: item)
        _ = DispatcharrStream(json: item)
    }
    _ = StreamStatsMerge.merged(value, with: ["resolution": .string("1280x720")])
    if value.isFinite {
        precondition(JSONValue.parse(value.encoded()) == value, "JSONValue did not read back what it wrote")
    }
}

extension JSONValue {
    /// False when a number is infinite (`1e999`), which JSON cannot write back.
    var isFinite: Bool {
        switch self {
        case .double(let number): number.isFinite
        case .array(let values): values.allSatisfy(\.isFinite)
        case .object(let members): members.values.allSatisfy(\.isFinite)
        default: true
        }
    }
}
