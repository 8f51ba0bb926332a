import Foundation
import Testing
@testable import Streams

@Suite struct StatReadingTests {
    private func parse(_ json: String) -> StatReading { StatReading.parse(Array(json.utf8), at: Date(timeIntervalSince1970: 0)) }

    @Test func readsTheEnginesShapeWithLiveposAsStrings() throws {
        let reading = parse("""
        {"response":{"uploaded":491520,"speed_down":257,"speed_up":29,"downloaded":3276800,"peers":4,"status":"dl",
         "livepos":{"last":"1639986704","live_first":"1639984904","pos":"1639986704","first_ts":"1639984904",
                    "last_ts":"1639986704","is_live":"1","live_last":"1639986704","buffer_pieces":"30"}},"error":null}
        """)
        guard case .sample(let sample) = reading else { Issue.record("\(reading)"); return }
        #expect(sample.peers == 4)
        #expect(sample.speedDown == 257)
        #expect(sample.speedUp == 29)
        #expect(sample.downloaded == 3_276_800)
        #expect(sample.uploaded == 491_520)
        #expect(sample.status == "dl")
        #expect(sample.livepos?.liveLast == 1_639_986_704)
        #expect(sample.livepos?.liveFirst == 1_639_984_904)
        #expect(sample.livepos?.bufferPieces == 30)
    }

    @Test func acceptsCamelCaseSpeedsAndLiveLastFallbacks() throws {
        guard case .sample(let camel) = parse(#"{"response":{"speedDown":"120","speedUp":7,"peers":"3","livepos":{"last_ts":"1700000000"}},"error":null}"#) else {
            Issue.record("camelCase not read"); return
        }
        #expect(camel.speedDown == 120)
        #expect(camel.speedUp == 7)
        #expect(camel.peers == 3)
        #expect(camel.livepos?.liveLast == 1_700_000_000, "live_last missing: last_ts")
        guard case .sample(let last) = parse(#"{"response":{"livepos":{"last":1700000001}},"error":null}"#) else {
            Issue.record("last not read"); return
        }
        #expect(last.livepos?.liveLast == 1_700_000_001, "then last")
    }

    // Found with the FuzzEngineAnswers target (perf/fuzz): a number written as a string
    // beyond Int64 ("1e30"), or "nan", trapped converting the Double, taking the process down.
    @Test func numbersBeyondInt64OrNotFiniteAreNotValuesNotACrash() {
        for text in [#""1e30""#, #""-1e300""#, #""nan""#, #""inf""#, "1e30", "-1e300", "18446744073709551616"] {
            let reading = parse(#"{"response":{"peers":\#(text),"downloaded":\#(text),"livepos":{"live_last":\#(text),"pos":\#(text)}},"error":null}"#)
            guard case .sample(let sample) = reading else { Issue.record("\(text): \(reading)"); continue }
            #expect(sample.peers == nil, "\(text)")
            #expect(sample.downloaded == nil, "\(text)")
            #expect(sample.livepos?.liveLast == nil, "\(text)")
        }
        guard case .sample(let fraction) = parse(#"{"response":{"peers":"4.0","downloaded":"12.7"},"error":null}"#) else {
            Issue.record("fractions not read"); return
        }
        #expect(fraction.peers == 4)
        #expect(fraction.downloaded == 12)
    }

    @Test func anUnknownSessionMeansItEndedAndGarbageIsAFailure() {
        #expect(parse(#"{"response":null,"error":"unknown playback session id"}"#) == .sessionEnded)
        if case .failed = parse("<html>502</html>") {} else { Issue.record("garbage must fail") }
        if case .failed = parse(#"{"response":null,"error":"something else"}"#) {} else { Issue.record("an engine error must fail") }
    }
}
